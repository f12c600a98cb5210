"""Amazon S3 sink for parquet-ingestor: streaming multipart uploads."""
