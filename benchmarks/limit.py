"""The vectorized limit: JSON lines -> snappy Parquet with pyarrow alone, in 5 MiB chunks.

    python benchmarks/limit.py EVENTS.jsonl OUT.parquet      # prints the row count

The reference the benchmarks compare ``ingest --source file --sink file`` against, on the same
file in the same run: ``read_json`` with an explicit schema, one row group per chunk.
"""

from __future__ import annotations

import io
import sys

import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

SCHEMA = pa.schema([
    ("id", pa.string()), ("created_at", pa.timestamp("ms", tz="UTC")), ("user_id", pa.int64()),
    ("type", pa.string()), ("amount", pa.float64()), ("country", pa.string()),
    ("payload", pa.string()), ("tags", pa.list_(pa.string())),
    ("ctx", pa.struct([("ip", pa.string()), ("ua", pa.string())])),
])
CHUNK = 5 << 20


def convert(src: str, dst: str) -> int:
    """Write ``src``'s events to ``dst``; returns the row count."""
    options = pj.ParseOptions(explicit_schema=SCHEMA)
    rows = 0
    with open(src, "rb") as handle, pq.ParquetWriter(dst, SCHEMA, compression="snappy") as writer:
        while chunk := handle.read(CHUNK):
            chunk += handle.readline()  # end on a line boundary
            table = pj.read_json(io.BytesIO(chunk), parse_options=options)
            writer.write_table(table)
            rows += table.num_rows
    return rows


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(convert(sys.argv[1], sys.argv[2]))
