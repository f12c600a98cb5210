"""parquet-ingestor."""
