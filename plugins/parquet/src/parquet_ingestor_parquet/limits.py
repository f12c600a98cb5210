"""Hostile-input limits checked before a line is parsed: nesting depth and keys per object.

A JSON object nested 1,000 deep made the batch fail (RecursionError), 10,000 deep crashed the
process, 100 deep gave files pyarrow cannot open ("Parquet schema too deeply nested"), and one
object with 1M keys took 7 GB. Lines past a limit are rejected alone, with a reason.

The hot path stays at C speed: only lines longer than 512 bytes are looked at before parsing
(``bytes.count`` of ``{`` and ``[`` bounds their depth, their length bounds their keys); the
depth of short lines shows in the parsed schema, checked once per batch. A line past a bound
gets the exact check, a small scanner that skips strings and never recurses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

DEFAULT_MAX_DEPTH = 32
#: pyarrow opens files with ~90 nested structs but only ~45 nested lists (a list is two Parquet
#: levels); deeper files fail with "Parquet schema too deeply nested"
DEEPEST_READABLE = 40
DEFAULT_MAX_KEYS = 10_000

_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]:,]')


def check_lines(
    lines: Sequence[bytes], max_depth: int, max_keys: int, every: bool = False
) -> list[tuple[int, str]]:
    """(line index, reason) for lines nested deeper than ``max_depth`` or with an object of
    more than ``max_keys`` keys.

    By default only lines longer than :data:`SHORT_LINE` bytes are looked at (one C-level
    ``max(map(len, lines))`` when none is): a shorter line cannot hold a key count past the
    limit, nor nesting deep enough to crash the JSON reader; its depth is checked after
    parsing, from the schema (:func:`schema_depth`), and then ``every=True`` checks all lines.
    """
    if not lines:
        return []
    threshold = max_depth if every else SHORT_LINE
    if not every and max(map(len, lines)) <= threshold:
        return []
    rejected = []
    for i, line in enumerate(lines):
        if len(line) <= threshold:
            continue
        if line.count(b"{") + line.count(b"[") <= max_depth and \
                len(line) <= SHORTEST_KEY * max_keys:
            continue
        reason = exceeds(line, max_depth, max_keys)
        if reason:
            rejected.append((i, reason))
    return rejected


def schema_depth(schema: Any) -> int:
    """JSON nesting depth an Arrow schema stands for: 1 for flat objects, +1 per struct or list.
    (pyarrow is imported here, not at module level: the plugin's registration imports this
    module for its defaults and must stay light.)"""
    return 1 + max((_depth(f.type) for f in schema), default=0)


def _depth(kind: Any) -> int:
    import pyarrow as pa

    depth = 0
    stack = [(kind, 0)]
    while stack:  # iterative: a deep type must not recurse
        kind, level = stack.pop()
        depth = max(depth, level)
        if pa.types.is_struct(kind):
            stack.extend((kind.field(i).type, level + 1) for i in range(kind.num_fields))
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            stack.append((kind.value_type, level + 1))
    return depth


#: The JSON reader parses ~1,000 levels and crashes at 10,000; a line this short holds at most
#: this many brackets, and a key takes at least SHORTEST_KEY bytes ('"":0').
SHORT_LINE = 512
SHORTEST_KEY = 4


def exceeds(line: bytes, max_depth: int, max_keys: int) -> str | None:
    """The limit ``line`` passes, as a reason, or None (iterative: no recursion at any depth)."""
    depth = 0
    keys: list[int] = []  # keys so far in each open object (-1 for an array)
    for match in _TOKENS.finditer(line):
        token = match.group()
        if token in (b"{", b"["):
            depth += 1
            if depth > max_depth:
                return f"JSON nested deeper than {max_depth} levels (max_depth)"
            keys.append(0 if token == b"{" else -1)
        elif token in (b"}", b"]"):
            depth -= 1
            if keys:
                keys.pop()
        elif token == b":" and keys and keys[-1] >= 0:
            keys[-1] += 1
            if keys[-1] > max_keys:
                return f"JSON object with more than {max_keys} keys (max_keys)"
    return None
