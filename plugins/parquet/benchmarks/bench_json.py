"""Decode+write throughput of the parquet encoder's JSON path against benchmarks/limit.py.

    uv run python plugins/parquet/benchmarks/bench_json.py [N_EVENTS] [--repeat R]

Both sides get the same events in ~5 MiB batches and write snappy Parquet into memory; the limit
side is limit.py's loop (read_json with an explicit schema, default block size). Prints rows/s
and the ratio ours / limit, best of R runs.
"""

from __future__ import annotations

import argparse
import io
import time

import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq
from parquet_ingestor.records import JsonLines
from parquet_ingestor.sample import load_bodies
from parquet_ingestor_parquet.encoder import ParquetEncoder

LIMIT_SCHEMA = pa.schema([
    ("id", pa.string()), ("created_at", pa.timestamp("ms", tz="UTC")), ("user_id", pa.int64()),
    ("type", pa.string()), ("amount", pa.float64()), ("country", pa.string()),
    ("payload", pa.string()), ("tags", pa.list_(pa.string())),
    ("ctx", pa.struct([("ip", pa.string()), ("ua", pa.string())])),
])
SPEC = {"id": "string", "created_at": "timestamp[ms, UTC]", "user_id": "int64", "type": "string",
        "amount": "float64", "country": "string", "payload": "string", "tags": "list<string>",
        "ctx": "struct<ip: string, ua: string>"}


def batches(bodies: list[bytes], size: int = 5 << 20) -> list[list[bytes]]:
    out, cur, n = [], [], 0
    for body in bodies:
        cur.append(body)
        n += len(body) + 1
        if n >= size:
            out.append(cur)
            cur, n = [], 0
    if cur:
        out.append(cur)
    return out


def run_limit(chunks: list[bytes]) -> int:
    po = pj.ParseOptions(explicit_schema=LIMIT_SCHEMA)
    sink = io.BytesIO()
    writer = pq.ParquetWriter(sink, LIMIT_SCHEMA, compression="snappy")
    rows = 0
    for chunk in chunks:
        table = pj.read_json(io.BytesIO(chunk), parse_options=po)
        writer.write_table(table)
        rows += table.num_rows
    writer.close()
    return rows


def run_ours(groups: list[list[bytes]], encoder: ParquetEncoder, spec: dict | None) -> int:
    rows = 0
    for lines in groups:
        decoded = encoder.decode(JsonLines(lines, list(range(len(lines))), schema=spec))
        sink = io.BytesIO()
        writer = encoder.open(sink, decoded.frame)
        writer.write(decoded.frame)
        writer.close({"ingest.records": str(len(decoded.frame))})
        rows += len(decoded.frame)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    bodies = load_bodies(args.n)
    groups = batches(bodies)
    chunks = [b"\n".join(g) + b"\n" for g in groups]
    cases = {
        "limit.py (explicit schema)": lambda: run_limit(chunks),
        "encoder, inferred schema": lambda: run_ours(groups, ParquetEncoder(), None),
        "encoder, schema from transformer": lambda: run_ours(groups, ParquetEncoder(), SPEC),
        "limit.py, one 5 MiB batch": lambda: run_limit(chunks[:1]),
        "encoder inferred, one 5 MiB batch": lambda: run_ours(groups[:1], ParquetEncoder(), None),
    }
    best: dict[str, float] = {}
    rows: dict[str, int] = {}
    for _ in range(args.repeat):  # rounds interleave the cases: a busy machine hits all alike
        for name, fn in cases.items():
            started = time.perf_counter()
            rows[name] = fn()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - started)
    print(f"{args.n} events, {len(groups)} batches of ~5 MiB ({len(groups[0])} events), "
          f"best of {args.repeat}")
    for name in cases:
        base = "limit.py, one 5 MiB batch" if "one" in name else "limit.py (explicit schema)"
        rate = rows[name] / best[name]
        ratio = rate / (rows[base] / best[base])
        print(f"  {name:36s} {rows[name]:>9d} rows {best[name]:7.3f}s {rate:>10,.0f} rows/s "
              f"ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
