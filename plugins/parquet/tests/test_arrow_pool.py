"""The plugin leaves the environment as it found it: Arrow's default pool is the system
allocator, chosen while pyarrow is imported, and ARROW_DEFAULT_MEMORY_POOL is put back."""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = """
import os
import parquet_ingestor_parquet.plugin  # registration: imports no pyarrow
assert "pyarrow" not in __import__("sys").modules
before = os.environ.get("ARROW_DEFAULT_MEMORY_POOL")
from parquet_ingestor_parquet.encoder import ParquetEncoder
import pyarrow as pa
print(before, os.environ.get("ARROW_DEFAULT_MEMORY_POOL"), pa.default_memory_pool().backend_name)
"""


def run(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if env_value is not None:
        env["ARROW_DEFAULT_MEMORY_POOL"] = env_value
    out = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    return out.stdout.strip()


def test_the_pool_variable_is_set_only_while_pyarrow_is_imported() -> None:
    assert run(None) == "None None system"


def test_a_pool_the_user_chose_is_kept() -> None:
    assert run("mimalloc") == "mimalloc mimalloc mimalloc"
