"""What a transformer hands to an encoder: records, in whichever form is cheapest.

* :class:`RecordList` - Python dicts, the easy path for hand-written transformers.
* :class:`JsonLines` - JSON object texts not decoded yet. An encoder that can decode a whole
  batch at once (the Parquet plugin with pyarrow's JSON reader) takes this path; any other
  encoder calls :meth:`JsonLines.decode` and gets a :class:`RecordList`.
* Anything else an encoder understands (an Arrow table wrapped by a plugin, say).

Every form keeps ``sources``: for each row, the index of the message it came from in the batch,
so rows can be traced back to the message that must be acked, rejected or released.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from . import jsoncodec
from .errors import ConfigError
from .interfaces import FrameGroup

#: A schema as the ``json`` transformer's ``schema=FILE`` gives it: column -> Arrow type name.
SchemaSpec = Mapping[str, str]


@dataclass
class RecordList:
    """Rows as Python dicts; ``sources[i]`` is the batch index of the message of ``rows[i]``."""

    rows: list[dict[str, Any]]
    sources: list[int]
    schema: SchemaSpec | None = None

    def __len__(self) -> int:
        return len(self.rows)


class TextLines(Sequence[bytes]):
    """``count`` lines kept joined until one is asked for: an encoder that parses a whole batch
    at once reads ``text`` and never splits it (blocks of a file); any other use splits it
    once, on first access. ``text`` is framed: ``b"\\n"``, the lines joined by ``b"\\n"``,
    ``b"\\n"`` (so a decoder can wrap every line with one ``replace`` and a zero-copy slice).
    Not thread-safe (one batch, one worker)."""

    __slots__ = ("text", "_count", "_lines")

    def __init__(self, text: bytes, count: int) -> None:
        self.text = text
        self._count = count
        self._lines: list[bytes] | None = None

    @property
    def is_split(self) -> bool:
        return self._lines is not None

    def split(self) -> list[bytes]:
        if self._lines is None:
            self._lines = self.text.split(b"\n")[1:-1]
            if len(self._lines) != self._count:
                raise ValueError(f"{len(self._lines)} lines in a text of {self._count}")
        return self._lines

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...

    def __getitem__(self, index: int | slice) -> bytes | list[bytes]:
        return self.split()[index]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.split())


@dataclass
class JsonLines:
    """Undecoded JSON object texts, one per row, plus columns to add to every row.

    ``columns`` maps a column name to one value per row (message attributes the user asked for,
    such as ``_message_id``). ``schema`` is the explicit schema when the user gave one.
    ``one_line``: the producer checked that no line holds a line break and that lines start
    with ``{``, so a decoder need not scan the batch for line breaks again. With ``lines`` a
    :class:`TextLines` of blocks, only the first line of each block was looked at (a decoder
    that wraps each line makes any other line a parse error, which rejects its block), and a
    CR may end a line (JSON whitespace).
    """

    lines: Sequence[bytes]  # a list, or TextLines (joined, split only when asked)
    sources: list[int]
    columns: dict[str, list[Any]] = field(default_factory=dict)
    schema: SchemaSpec | None = None
    one_line: bool = False

    def __len__(self) -> int:
        return len(self.lines)

    def decode(self) -> tuple[RecordList, list[tuple[int, str]]]:
        """Decode in Python; rows that are not JSON objects come back as ``(source, reason)``."""
        rows: list[dict[str, Any]] = []
        sources: list[int] = []
        rejected: list[tuple[int, str]] = []
        loads = jsoncodec.loads
        extra = list(self.columns.items())
        for i, (line, src) in enumerate(zip(self.lines, self.sources, strict=True)):
            try:
                row = loads(line)
            except ValueError as exc:
                rejected.append((src, f"invalid JSON: {exc}"))
                continue
            if not isinstance(row, dict):
                rejected.append((src, f"JSON value is a {type(row).__name__}, not an object"))
                continue
            for name, values in extra:
                row[name] = values[i]
            rows.append(row)
            sources.append(src)
        return RecordList(rows, sources, self.schema), rejected


def read_schema_file(path: str, where: str) -> dict[str, Any]:
    """Read a schema file (a JSON object: column -> Arrow type name); ``where`` names the option.

    Shared by the ``json`` transformer and encoders so every schema file fails the same way.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path!r}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{where}: {path!r} is not JSON: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{where}: {path!r} must hold a JSON object mapping column names to "
                          "Arrow types, e.g. {\"user_id\": \"int64\"}")
    return data


class ListFrame:
    """A :class:`~parquet_ingestor.interfaces.Frame` over Python dicts (used by the jsonl encoder)."""

    def __init__(self, rows: list[dict[str, Any]], sources: Sequence[int]) -> None:
        self.rows = rows
        self.sources = sources

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, indices: Sequence[int]) -> ListFrame:
        return ListFrame([self.rows[i] for i in indices], [self.sources[i] for i in indices])

    def slice(self, start: int, stop: int) -> ListFrame:
        return ListFrame(self.rows[start:stop], self.sources[start:stop])

    def group(
        self, fields: Sequence[str], time_field: str | None = None, seconds: int = 0,
        read: Callable[[Any], int | None] | None = None,
    ) -> list[FrameGroup]:
        """Rows by equal values; every time value goes through ``read`` (dicts hold no
        instants of their own: a ``datetime`` is read too)."""
        width = seconds * 1_000_000
        timed: dict[tuple[int | None, tuple[Any, ...]], list[Any]] = {}  # -> [rows, low, high]
        for i, row in enumerate(self.rows):
            values = tuple([hashable(row.get(name)) for name in fields]) if fields else ()
            value = row.get(time_field) if time_field and read is not None else None
            micros = read(value) if value is not None and read is not None else None
            if micros is None:
                key: tuple[int | None, tuple[Any, ...]] = (None, values)
            else:
                key = (micros // width * seconds if width else 0, values)
            entry = timed.get(key)
            if entry is None:
                timed[key] = [[i], micros, micros]
            else:
                entry[0].append(i)
                if micros is not None:
                    if micros < entry[1]:
                        entry[1] = micros
                    elif micros > entry[2]:
                        entry[2] = micros
        return [FrameGroup(values, rows, None if start is None else (start, low, high))
                for (start, values), (rows, low, high) in timed.items()]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)


def hashable(value: Any) -> Any:
    """A value usable as a dict key, for grouping frames (lists and dicts become tuples)."""
    if isinstance(value, list):
        return tuple(hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, hashable(v)) for k, v in value.items()))
    return value
