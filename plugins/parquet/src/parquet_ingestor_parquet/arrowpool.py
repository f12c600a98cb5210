"""pyarrow, imported with Arrow's default memory pool set to the C library's allocator.

With several flush threads, mimalloc (pyarrow's default) kept ~100 MiB more resident than the
C library's allocator at the same speed (docs/performance.md). Arrow picks its default pool
once, from ``ARROW_DEFAULT_MEMORY_POOL``, when the pool is first used: the variable is set
only while pyarrow is imported and the pool created here, then put back as it was, so the
process (and its child processes) see the environment they had. A pool chosen by the user
(the variable set), or pyarrow imported before this package, is left alone.
"""

from __future__ import annotations

import sys

from parquet_ingestor.tuning import scoped_env

#: The allocator this package prefers for Arrow's default pool.
PREFERRED_POOL = "system"

if "pyarrow" in sys.modules:
    import pyarrow as pa
else:
    with scoped_env("ARROW_DEFAULT_MEMORY_POOL", PREFERRED_POOL):
        import pyarrow as pa

        pa.default_memory_pool()  # created now, while the variable says which

__all__ = ["PREFERRED_POOL", "pa"]
