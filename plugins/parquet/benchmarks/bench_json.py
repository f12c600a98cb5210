"""Decode+write throughput of the parquet encoder's JSON path against /work/shared/bench/limit.py.

    uv run python plugins/parquet/benchmarks/bench_json.py [N_EVENTS] [--repeat R]

Both sides get the same events in ~5 MiB batches and write snappy Parquet into memory; the limit
side is limit.py's loop (read_json with an explicit schema, default block size). Prints rows/s
and the ratio ours / limit, best of R runs.
"""

from __future__ import annotations

import argparse
import io
import sys
import time

import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq
from parquet_ingestor.records import JsonLines
from parquet_ingestor_parquet.encoder import ParquetEncoder

sys.path.insert(0, "/work/shared/bench")
from gen_events import load_bodies  # noqa: E402

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


def best(fn, repeat: int) -> tuple[float, int]:
    times, rows = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        rows = fn()
        times.append(time.perf_counter() - started)
    return min(times), rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    bodies = load_bodies(args.n)
    groups = batches(bodies)
    chunks = [b"\n".join(g) + b"\n" for g in groups]
    one = [groups[0]]
    cases = {
        "limit.py (explicit schema)": lambda: run_limit(chunks),
        "encoder, inferred schema": lambda: run_ours(groups, ParquetEncoder(), None),
        "encoder, schema from transformer": lambda: run_ours(groups, ParquetEncoder(), SPEC),
    }
    print(f"{args.n} events, {len(groups)} batches of ~5 MiB ({len(groups[0])} events)")
    base = None
    for name, fn in cases.items():
        seconds, rows = best(fn, args.repeat)
        rate = rows / seconds
        base = base or rate
        print(f"  {name:34s} {rows:>9d} rows {seconds:7.3f}s {rate:>10,.0f} rows/s "
              f"ratio {rate / base:.2f}")
    s1, r1 = best(lambda: run_limit(chunks[:1]), args.repeat)
    s2, r2 = best(lambda: run_ours(one, ParquetEncoder(), None), args.repeat)
    print(f"  one 5 MiB batch: limit {r1 / s1:,.0f} rows/s, encoder inferred {r2 / s2:,.0f} "
          f"rows/s, ratio {(r2 / s2) / (r1 / s1):.2f}")


if __name__ == "__main__":
    main()
