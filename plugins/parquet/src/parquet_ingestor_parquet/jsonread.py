"""The vectorized JSON path: a whole batch of JSON lines parsed by ``pyarrow.json.read_json``.

Each line is wrapped as ``{"v": LINE}``, the lines joined with ``\\n`` and parsed as one block (so type inference sees every row at
once). If the parse fails, or yields a different number of rows than there are lines (an empty
line, two objects on one line), the range is split and each piece parsed again: at the row
pyarrow names in its error when it names one, else in halves. A single line that still fails is
rejected with pyarrow's error. Every parsed piece has exactly one row per line, so row -> line
alignment is exact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
from parquet_ingestor.records import TextLines

from .limits import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_KEYS,
    SHORTEST_KEY,
    check_lines,
    schema_depth,
)
from .timeparse import as_strings, has_timestamp

MAX_BLOCK = 1 << 30  # read_json's block_size is an int32; bigger ranges are split first
_ROW_HINT = re.compile(r" in row (\d+)\s*$")
WRAP = "v"
EMPTY = "__empty__"  # placeholder column of a piece whose objects have no fields at all
_JOIN = b'}\n{"' + WRAP.encode() + b'":'



@dataclass
class ParsedLines:
    """Tables parsed from consecutive line ranges, and the lines rejected on the way."""

    tables: list[pa.Table] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # line index of each row, in table order
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line index, reason)
    parses: int = 0  # read_json calls (1 when the batch is clean)
    #: top-level fields the reader typed as times in some range, read again as text there
    as_text: set[str] = field(default_factory=set)


def parse_lines(
    lines: Sequence[bytes], schema: pa.Schema | None, unexpected_fields: str,
    max_depth: int = DEFAULT_MAX_DEPTH, max_keys: int = DEFAULT_MAX_KEYS,
    one_line: bool = False,
) -> ParsedLines:
    """Parse JSON object lines; ``unexpected_fields`` is ``infer`` or ``ignore`` (with a schema).

    Lines nested deeper than ``max_depth`` or with an object of more than ``max_keys`` keys are
    rejected before parsing (:mod:`.limits`). A line that fails only because of ``schema`` (a
    number where text is declared) is parsed again without it, so the caller can give the
    reason in its own terms. The reader's own timestamps (it infers them from text, drops
    offsets and turns dates into midnight) never come out: a range where it typed a field as a
    time is parsed again with that field declared as text, and the field is named in
    :attr:`ParsedLines.as_text`. ``one_line``: the caller knows no line holds a CR or LF
    (:attr:`JsonLines.one_line`), so the batch is not scanned for them (~3 ms a 5 MiB batch).
    """
    result = ParsedLines()
    if not lines:
        return result
    wrapped = pa.schema([pa.field(WRAP, pa.struct(list(schema)))]) if schema is not None else None
    options = pj.ParseOptions(explicit_schema=wrapped, newlines_in_values=False,
                              unexpected_field_behavior=unexpected_fields if schema else "infer")
    inferring = pj.ParseOptions(newlines_in_values=False) if schema is not None else None
    work_lines: Sequence[bytes] = lines
    data: bytes | pa.Buffer | None
    if isinstance(lines, TextLines) and one_line and not lines.is_split and \
            not _long_line(lines.text, min(LONG_LINE, SHORTEST_KEY * max_keys) // 2):
        # lines kept joined (blocks of a file): wrapped in one pass, never split when clean;
        # every line is short enough for the reader, and its depth shows in the schema.
        # "\nL1\n...\nLn\n" -> '}\n{"v":L1}\n...{"v":Ln}\n{"v":' -> a slice without its ends
        framed = lines.text.replace(b"\n", _JOIN)
        data = pa.py_buffer(framed).slice(2, len(framed) - 2 - len(_JOIN) + 1)
        hostile = []
    else:
        data = _wrap(lines)
        if not one_line and (data.count(b"\n") != len(lines) - 1 or b"\r" in data):
            # A line break inside a JSON text is only legal between tokens, where a space is
            # the same.
            work_lines = [_one_line(line) for line in lines]
            data = None
        hostile = check_lines(work_lines, max_depth, max_keys)
    result = _parse_ranges(work_lines, data, hostile, options, inferring)
    if any(schema_depth(t.schema) > max_depth for t in result.tables):
        deep = check_lines(work_lines, max_depth, max_keys, every=True)
        if deep:  # short lines too deep for Parquet readers: parse again without them
            result = _parse_ranges(work_lines, None, sorted({**dict(hostile), **dict(deep)}.items()),
                                   options, inferring)
    return result


def _parse_ranges(
    work_lines: Sequence[bytes], data: bytes | pa.Buffer | None, hostile: list[tuple[int, str]],
    options: pj.ParseOptions, inferring: pj.ParseOptions | None,
) -> ParsedLines:
    """Parse every line but the ``hostile`` ones (rejected with their reasons)."""
    result = ParsedLines()
    work: list[tuple[int, int, bytes | pa.Buffer | None]] = []
    if hostile:
        result.rejected.extend(hostile)
        lo = 0
        for index, _ in hostile:
            work.append((lo, index, None))
            lo = index + 1
        work.append((lo, len(work_lines), None))
        work.reverse()
    else:
        work.append((0, len(work_lines), data))
    while work:
        lo, hi, data = work.pop()
        if lo >= hi:
            continue
        if data is None:
            data = _wrap(work_lines[lo:hi])
        if len(data) > MAX_BLOCK and hi - lo > 1:
            mid = (lo + hi) // 2
            work += [(mid, hi, None), (lo, mid, None)]
            continue
        result.parses += 1
        table, error, hint = _parse(data, hi - lo, options, result)
        if table is not None:
            _add(result, table, lo)
        elif hi - lo == 1:
            table = None
            if inferring is not None:
                table, _, _ = _parse(data, 1, inferring, result)
            if table is None and error.startswith(INVALID):
                table = _python_row(work_lines[lo])
            if table is not None:
                _add(result, table, lo)
            else:
                result.rejected.append((lo, _reason(error, work_lines[lo])))
        elif hint is not None and 0 <= hint < hi - lo:
            row = lo + hint
            work += [(row + 1, hi, None), (row, row + 1, None), (lo, row, None)]
        else:
            mid = (lo + hi) // 2
            work += [(mid, hi, None), (lo, mid, None)]
    result.rejected.sort()
    return result


_HEAD = b'{"' + WRAP.encode() + b'":'
#: bytes: the JSON reader parses a line this long whatever its nesting (4,000 levels parse;
#: 8,000 crash the process), and it holds at most LONG_LINE / SHORTEST_KEY keys
LONG_LINE = 4096


def _long_line(text: bytes, window: int) -> bool:
    """True when a line of ``text`` may be ``2 * window`` bytes or longer: some aligned
    window of ``window`` bytes holds no line break (any line that long covers one). A
    memchr per window, not a pass per line; a false alarm only costs the careful path."""
    find = text.find
    return any(find(b"\n", start, start + window) < 0
               for start in range(0, len(text) - window + 1, window))


def _wrap(lines: Sequence[bytes]) -> bytes:
    """``{"v":LINE}`` per line: any line now yields exactly one row or a parse error (a blank
    line or two objects on one line can no longer shift rows), and a bare ``null`` shows up as
    a null struct instead of an empty row."""
    if not lines:
        return b""
    if len(lines) == 1:
        return _HEAD + lines[0] + b"}"
    # one copy of the batch: only the first and last lines are copied to add head and tail
    return _JOIN.join([_HEAD + lines[0], *lines[1:-1], lines[-1] + b"}"])


def _add(result: ParsedLines, table: pa.Table, lo: int) -> None:
    column = table.column(WRAP)
    if column.type.num_fields == 0:  # only `{}` lines: keep the row count with a placeholder
        column = pa.chunked_array([pa.StructArray.from_arrays(
            [pa.nulls(len(column))], [EMPTY], mask=pc.is_null(column).combine_chunks())])
    flat = pa.Table.from_batches(
        [pa.RecordBatch.from_struct_array(chunk) for chunk in column.chunks],
        schema=pa.schema(list(column.type)))
    if column.null_count:  # lines that are a bare `null`
        valid = pc.is_valid(column)
        for i in pc.indices_nonzero(pc.invert(valid)).to_pylist():
            result.rejected.append((lo + i, "JSON value is null, not an object"))
        flat = flat.filter(valid)
        result.lines.extend(lo + i for i in pc.indices_nonzero(valid).to_pylist())
    else:
        result.lines.extend(range(lo, lo + table.num_rows))
    result.tables.append(flat)


def _reason(error: str, line: bytes) -> str:
    if not line.strip():
        return "empty line, not a JSON object"
    return error.replace("Column(/" + WRAP + ")", "Column()").replace("/" + WRAP + "/", "/")


def _one_line(line: bytes) -> bytes:
    if b"\n" in line or b"\r" in line:
        return line.replace(b"\r", b" ").replace(b"\n", b" ")
    return line


def _parse(
    data: bytes | pa.Buffer, expected_rows: int, options: pj.ParseOptions,
    result: ParsedLines,
) -> tuple[pa.Table | None, str, int | None]:
    """(table, "", None) on success, else (None, reason, row hint or None). Fields the reader
    typed as times on its own are parsed again as text (counted in ``result``)."""
    table, error, hint = _read(data, expected_rows, options)
    if table is None:
        return table, error, hint
    texts = _reader_times(table, options.explicit_schema)
    if not texts:
        return table, error, hint
    declared = list(options.explicit_schema.field(WRAP).type) if options.explicit_schema \
        else []
    names = [f.name for f in declared]
    for text in texts:
        if text.name in names:
            declared[names.index(text.name)] = text
        else:
            declared.append(text)
    again = pj.ParseOptions(explicit_schema=pa.schema([pa.field(WRAP, pa.struct(declared))]),
                            newlines_in_values=False,
                            unexpected_field_behavior=options.unexpected_field_behavior)
    result.parses += 1
    retyped, error, hint = _read(data, expected_rows, again)
    if retyped is None:
        return retyped, error, hint
    result.as_text.update(f.name for f in texts)
    order = [f.name for f in table.schema.field(WRAP).type]
    return _struct_in_order(retyped, order), "", None


def _reader_times(table: pa.Table, declared: pa.Schema | None) -> list[pa.Field]:
    """Top-level fields holding a timestamp the reader inferred (not one ``declared``), as the
    text fields to declare instead."""
    given = declared.field(WRAP).type if declared is not None else pa.struct([])
    texts = []
    for got in table.schema.field(WRAP).type:
        if has_timestamp(got.type) and not (
                given.get_field_index(got.name) >= 0 and given.field(got.name).type == got.type):
            texts.append(got.with_type(as_strings(got.type)))
    return texts


def _struct_in_order(table: pa.Table, order: list[str]) -> pa.Table:
    """``table``'s wrapped fields in ``order`` (the first parse's, so that declaring a field
    does not move it)."""
    column = table.column(WRAP)
    kind = column.type
    if [f.name for f in kind] == order:
        return table
    fields = [kind.field(name) for name in order]
    chunks = [pa.StructArray.from_arrays([chunk.field(name) for name in order], fields=fields,
                                         mask=pc.is_null(chunk)) for chunk in column.chunks]
    return pa.table({WRAP: pa.chunked_array(chunks, pa.struct(fields))})


def _read(
    data: bytes | pa.Buffer, expected_rows: int, options: pj.ParseOptions
) -> tuple[pa.Table | None, str, int | None]:
    """One ``read_json``: (table, "", None) on success, else (None, reason, row hint or None)."""
    read_options = pj.ReadOptions(use_threads=True, block_size=len(data) + 64)
    try:
        table = pj.read_json(pa.BufferReader(data), read_options=read_options,
                             parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        message = str(exc)
        match = _ROW_HINT.search(message)
        return None, message, int(match.group(1)) if match else None
    if table.num_rows != expected_rows:
        return None, f"expected one JSON object per line, got {table.num_rows} values in " \
                     f"{expected_rows} line(s)", None
    if not pa.types.is_struct(table.schema.field(WRAP).type):
        return None, f"JSON value is {table.schema.field(WRAP).type}, not an object", None
    try:
        table.validate(full=True)  # read_json passes invalid UTF-8 through
    except pa.ArrowInvalid as exc:
        return None, f"{INVALID}{exc}", None
    return table, "", None


INVALID = "invalid data: "


def _python_row(line: bytes) -> pa.Table | None:
    """One line the JSON reader turned into invalid Arrow data (pyarrow 26 does so for a list
    whose first item is null, ``[null, 3]``), parsed by Python instead, as the wrapped
    one-row table the reader would give; None when it is not valid UTF-8 JSON (an object)."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    try:
        table = pa.table({WRAP: pa.array([value])})
        table.validate(full=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return None
    return table
