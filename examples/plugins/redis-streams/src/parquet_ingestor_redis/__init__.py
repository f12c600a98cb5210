"""Source 'redis-streams' for parquet-ingestor: Redis Streams read through a consumer group."""

__version__ = "0.1.0"
