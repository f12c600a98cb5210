"""Deterministic sample events: realistic JSON messages for tries, tests and benchmarks.

Each event is one compact JSON object of ~300-420 bytes (mean ~345): ``id`` (a UUID),
``created_at`` (ISO 8601 with ``Z``, spread over six hours of 2024-05-01), ``user_id`` (int64),
``type``, ``amount``, ``country``, ``payload`` (ASCII text), ``tags`` (list) and ``ctx``
(``{ip, ua}``). The same ``(n, seed)`` always gives byte-identical output, and the first ``k``
events of any run are the same as a run of ``k``: each event depends only on the seed and its index.

    python -m parquet_ingestor.sample 100000 > events.jsonl       # one object per line
    python -m parquet_ingestor.sample 1000 --seed 7 -o events.jsonl

    from parquet_ingestor.sample import iter_events, load_bodies
"""

from __future__ import annotations

import argparse
import json
import os
import random
import string
import sys
import tempfile
from collections.abc import Iterator, Sequence

DEFAULT_SEED = 20240501

TYPES = ("page_view", "click", "add_to_cart", "purchase", "signup", "login", "logout", "search")
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "PL", "SE", "BR",
             "MX", "CA", "JP", "KR", "IN", "AU", "ZA", "NG", "EG", "AR")
TAGS = ("a", "b", "beta", "mobile", "web", "ios", "android", "promo", "vip", "new", "ret", "ab1")
UAS = ("Chrome/124.0", "Firefox/125.0", "Safari/17.4", "iOS/17.4",
       "Android/14", "Edge/124.0", "curl/8.5.0", "okhttp/4.12")
# ASCII without '"' and '\\', so payloads need no JSON escaping
_ALPHABET = string.ascii_letters + string.digits + " -_.,:;/=+*!?#%&()[]{}<>@^~|"
_POOL_LEN = 1 << 20
_SPAN_MS = 6 * 3600 * 1000  # events spread over six hours
_BASE_DAY = "2024-05-01"


def iter_events(n: int, seed: int = DEFAULT_SEED) -> Iterator[bytes]:
    """Yield ``n`` compact JSON bodies (bytes, no trailing newline)."""
    rng = random.Random(seed)
    # one fixed random pool; payloads are random-offset slices of it (fast and deterministic)
    pool = "".join(rng.choices(_ALPHABET, k=_POOL_LEN))
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode
    rnd, randrange, getrandbits = rng.random, rng.randrange, rng.getrandbits
    for _ in range(n):
        hx = f"{getrandbits(128):032x}"
        ms = randrange(_SPAN_MS)
        s, msr = divmod(ms, 1000)
        m, sec = divmod(s, 60)
        hr, mi = divmod(m, 60)
        plen = 80 + int(121 * rnd() ** 3)  # 80..200 chars, skewed short: ~340 B per message
        off = randrange(_POOL_LEN - plen)
        event = {
            "id": f"{hx[:8]}-{hx[8:12]}-{hx[12:16]}-{hx[16:20]}-{hx[20:]}",
            "created_at": f"{_BASE_DAY}T{hr:02d}:{mi:02d}:{sec:02d}.{msr:03d}Z",
            "user_id": randrange(1, 1 << 36),  # mostly > 2**31: needs int64
            "type": TYPES[randrange(len(TYPES))],
            "amount": round(rnd() * 500.0, 2),
            "country": COUNTRIES[randrange(len(COUNTRIES))],
            "payload": pool[off:off + plen],
            "tags": [TAGS[randrange(len(TAGS))] for _ in range(randrange(4))],
            "ctx": {
                "ip": f"10.{randrange(256)}.{randrange(256)}.{randrange(1, 255)}",
                "ua": UAS[randrange(len(UAS))],
            },
        }
        yield dumps(event).encode("ascii")


def gen_bodies(n: int, seed: int = DEFAULT_SEED) -> list[bytes]:
    """``n`` bodies as a list."""
    return list(iter_events(n, seed))


def write_events(path: str | os.PathLike[str], n: int, seed: int = DEFAULT_SEED) -> str:
    """Write ``n`` events as JSON lines to ``path`` (atomically: a temporary file, then rename)."""
    target = os.fspath(path)
    tmp = f"{target}.tmp{os.getpid()}"
    with open(tmp, "wb") as handle:
        for body in iter_events(n, seed):
            handle.write(body + b"\n")
    os.replace(tmp, target)
    return target


def cache_path(n: int, seed: int = DEFAULT_SEED) -> str:
    """Where the JSON-lines cache of ``(n, seed)`` lives: ``$BENCH_DATA`` or the temp folder."""
    folder = os.environ.get("BENCH_DATA") or os.path.join(tempfile.gettempdir(), "bench_events")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"events_{n}_s{seed}.jsonl")


def ensure_cache(n: int, seed: int = DEFAULT_SEED) -> str:
    """Generate the JSON-lines cache file of ``(n, seed)`` once; return its path."""
    path = cache_path(n, seed)
    if not os.path.exists(path):
        write_events(path, n, seed)
    return path


def load_bodies(n: int, seed: int = DEFAULT_SEED) -> list[bytes]:
    """``n`` bodies, generated once and cached as JSON lines (a fast reload for benchmarks)."""
    with open(ensure_cache(n, seed), "rb") as handle:
        return [line[:-1] for line in handle]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m parquet_ingestor.sample",
        description="Write N deterministic sample events as JSON lines (stdout by default).")
    parser.add_argument("n", type=int, help="how many events")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"random seed [default: {DEFAULT_SEED}]")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    args = parser.parse_args(argv)
    if args.n < 0:
        parser.error("N must not be negative")
    if args.output:
        write_events(args.output, args.n, args.seed)
        return 0
    out = sys.stdout.buffer
    try:
        for body in iter_events(args.n, args.seed):
            out.write(body + b"\n")
        out.flush()
    except BrokenPipeError:  # `python -m parquet_ingestor.sample 1000000 | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
