"""Opt into parquet-ingestor's test kit: fixtures (run_pipeline, plugin_registry, memory_sink,
memory_source) and the contract suites the tests subclass."""

pytest_plugins = ["parquet_ingestor.testing"]
