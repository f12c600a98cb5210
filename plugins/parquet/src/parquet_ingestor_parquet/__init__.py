"""Parquet encoder for parquet-ingestor (pyarrow, optional fastparquet engine)."""
