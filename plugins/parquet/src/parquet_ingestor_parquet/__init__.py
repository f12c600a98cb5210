"""Parquet encoder for parquet-ingestor (pyarrow, optional fastparquet engine)."""

import os

#: True when the user picked Arrow's allocator (ARROW_DEFAULT_MEMORY_POOL) themselves.
POOL_CHOSEN_BY_USER = bool(os.environ.get("ARROW_DEFAULT_MEMORY_POOL"))
# Arrow's C++ default pool is chosen once, from this variable, when first used. Set here, before
# any module of this package imports pyarrow: with several flush threads, mimalloc (pyarrow's
# default) kept ~100 MiB more resident than the C library's allocator at the same speed
# (docs/performance.md).
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
