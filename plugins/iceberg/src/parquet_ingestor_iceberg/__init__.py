"""Apache Iceberg sink for parquet-ingestor."""
