"""The vectorized JSON path: a whole batch of JSON lines parsed by ``pyarrow.json.read_json``.

The lines are joined with ``\\n`` and parsed as one block (so type inference sees every row at
once). If the parse fails, or yields a different number of rows than there are lines (an empty
line, two objects on one line), the range is split and each piece parsed again: at the row
pyarrow names in its error when it names one, else in halves. A single line that still fails is
rejected with pyarrow's error. Every parsed piece has exactly one row per line, so row -> line
alignment is exact.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.json as pj

MAX_BLOCK = 1 << 30  # read_json's block_size is an int32; bigger ranges are split first
_ROW_HINT = re.compile(r" in row (\d+)\s*$")
_INDENTED_NULL = re.compile(rb"\n[ \t]+null")


@dataclass
class ParsedLines:
    """Tables parsed from consecutive line ranges, and the lines rejected on the way."""

    tables: list[pa.Table] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # line index of each row, in table order
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line index, reason)
    parses: int = 0  # read_json calls (1 when the batch is clean)


def parse_lines(
    lines: Sequence[bytes], schema: pa.Schema | None, unexpected_fields: str
) -> ParsedLines:
    """Parse JSON object lines; ``unexpected_fields`` is ``infer`` or ``ignore`` (with a schema)."""
    result = ParsedLines()
    if not lines:
        return result
    options = pj.ParseOptions(explicit_schema=schema, newlines_in_values=False,
                              unexpected_field_behavior=unexpected_fields if schema else "infer")
    work_lines: Sequence[bytes] = lines
    index: list[int] | None = None  # original index of each work line, when some were removed
    buf: bytes | None = b"\n".join(lines)

    if buf.count(b"\n") != len(lines) - 1 or b"\r" in buf:
        # A line break inside a JSON text is only legal between tokens, where a space is the same.
        work_lines = [_one_line(line) for line in lines]
        buf = None
    joined = buf if buf is not None else b"\n".join(work_lines)
    if _may_hold_null_line(joined):  # read_json takes a bare `null` as an empty row: reject it
        index = []
        kept: list[bytes] = []
        for i, line in enumerate(work_lines):
            if line.strip() == b"null":
                result.rejected.append((i, "JSON value is null, not an object"))
            else:
                index.append(i)
                kept.append(line)
        work_lines, buf = kept, None

    work: list[tuple[int, int, bytes | None]] = [(0, len(work_lines), buf)]
    while work:
        lo, hi, data = work.pop()
        if lo >= hi:
            continue
        if data is None:
            data = b"\n".join(work_lines[lo:hi])
        if len(data) > MAX_BLOCK and hi - lo > 1:
            mid = (lo + hi) // 2
            work += [(mid, hi, None), (lo, mid, None)]
            continue
        result.parses += 1
        table, error, hint = _parse(data, hi - lo, options)
        if table is not None:
            result.tables.append(table)
            result.lines.extend(range(lo, hi))
        elif hi - lo == 1:
            result.rejected.append((lo if index is None else index[lo], error))
        elif hint is not None and 0 <= hint < hi - lo:
            row = lo + hint
            work += [(row + 1, hi, None), (row, row + 1, None), (lo, row, None)]
        else:
            mid = (lo + hi) // 2
            work += [(mid, hi, None), (lo, mid, None)]
    if index is not None:
        result.lines = [index[i] for i in result.lines]
    if result.rejected and index is not None:
        result.rejected.sort()
    return result


def _may_hold_null_line(buf: bytes) -> bool:
    """Cheap scans (no per-line Python) for a line that may be a bare ``null``."""
    return (buf[:64].lstrip(b" \t").startswith(b"null") or b"\nnull" in buf
            or _INDENTED_NULL.search(buf) is not None)


def _one_line(line: bytes) -> bytes:
    if b"\n" in line or b"\r" in line:
        return line.replace(b"\r", b" ").replace(b"\n", b" ")
    return line


def _parse(
    data: bytes, expected_rows: int, options: pj.ParseOptions
) -> tuple[pa.Table | None, str, int | None]:
    """(table, "", None) on success, else (None, reason, row hint or None)."""
    read_options = pj.ReadOptions(use_threads=True, block_size=len(data) + 64)
    try:
        table = pj.read_json(pa.BufferReader(data), read_options=read_options,
                             parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        message = str(exc)
        match = _ROW_HINT.search(message)
        return None, message, int(match.group(1)) if match else None
    if table.num_rows != expected_rows:
        if expected_rows == 1:
            what = "an empty line" if table.num_rows == 0 else f"{table.num_rows} JSON values"
            return None, f"expected one JSON object, got {what}", None
        return None, "row count does not match line count", None
    try:
        table.validate(full=True)  # read_json passes invalid UTF-8 through
    except pa.ArrowInvalid as exc:
        return None, f"invalid data: {exc}", None
    return table, "", None
