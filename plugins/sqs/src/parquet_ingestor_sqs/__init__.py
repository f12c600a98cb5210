"""Amazon SQS source for parquet-ingestor: long polling, leases, batch acks."""
