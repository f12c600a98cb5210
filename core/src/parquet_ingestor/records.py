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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, overload

from . import jsoncodec
from .errors import ConfigError

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


def to_datetime(value: Any) -> datetime | None:
    """Read an event time from a record value: datetime, ISO-8601 text, or epoch seconds/ms.

    Returns an aware UTC datetime, or None when the value is missing or unusable.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            seconds = value / 1000.0 if abs(value) > 1e11 else float(value)  # ms vs s
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str):
            text = value.strip()
            if text.endswith(("Z", "z")):
                text = text[:-1] + "+00:00"
            parsed = datetime.fromisoformat(text)
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


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

    def group_rows(
        self, time_field: str | None, time_unit: str, fields: Sequence[str]
    ) -> dict[tuple[datetime | None, tuple[Any, ...]], list[int]]:
        groups: dict[tuple[datetime | None, tuple[Any, ...]], list[int]] = {}
        for i, row in enumerate(self.rows):
            when = truncate(to_datetime(row.get(time_field)), time_unit) if time_field else None
            key = (when, tuple(row.get(name) for name in fields))
            groups.setdefault(key, []).append(i)
        return groups

    def time_range(self, time_field: str) -> tuple[datetime, datetime] | None:
        times = [t for t in (to_datetime(r.get(time_field)) for r in self.rows) if t is not None]
        return (min(times), max(times)) if times else None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)


_TRUNCATE = {
    "year": dict(month=1, day=1, hour=0, minute=0, second=0, microsecond=0),
    "month": dict(day=1, hour=0, minute=0, second=0, microsecond=0),
    "day": dict(hour=0, minute=0, second=0, microsecond=0),
    "hour": dict(minute=0, second=0, microsecond=0),
    "minute": dict(second=0, microsecond=0),
    "second": dict(microsecond=0),
}


def truncate(when: datetime | None, unit: str) -> datetime | None:
    """Floor a datetime to ``year month day hour minute second`` (the partition's grain)."""
    if when is None:
        return None
    return when.replace(**_TRUNCATE[unit])  # type: ignore[arg-type]
