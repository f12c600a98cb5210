"""Transformer ``json``: each message body is a JSON object (or, with ``lines``, JSON lines).

It does not decode anything itself: it hands :class:`~parquet_ingestor.records.JsonLines` to
the encoder, which decodes the whole batch at once (the Parquet plugin with pyarrow's reader)
or falls back to ``json.loads``. Bodies that cannot be a JSON object are rejected here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from itertools import chain, repeat
from operator import attrgetter
from typing import Any

from ..errors import ConfigError
from ..interfaces import TransformResult
from ..message import Message, Rejection, count_records
from ..records import JsonLines, SchemaSpec, TextLines, read_schema_file

_BODY = attrgetter("body")
_RECORDS = attrgetter("records")


def load_schema(path: str) -> dict[str, str]:
    """Read a schema file: a JSON object mapping column name -> Arrow type name."""
    where = "transformer 'json' option 'schema'"
    data = read_schema_file(path, where)
    if not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"{where}: every type must be a name, e.g. {{\"user_id\": \"int64\"}}")
    return data


def _blocks_text(bodies: list[bytes], records: int, blocks_only: bool) -> bytes | None:
    """The lines of ``bodies`` (blocks of lines, and single lines) framed for
    :class:`TextLines`, when each body starts with ``{`` (the decoder's wrapping turns any
    other line into a parse error, rejecting its block; a CR is JSON whitespace to it); else
    None. A batch that holds single messages too is checked for ``records`` lines without a
    CR (a single message may be a JSON text over several lines); blocks hold their lines."""
    try:
        if not all(map(bytes.startswith, bodies, repeat(b"{"))):
            return None
        text = b"\n".join([b"", *bodies, b""])
    except TypeError:  # a body that is not bytes: the careful path
        return None
    if not blocks_only and (b"\r" in text or text.count(b"\n") != records + 1):
        return None
    return text


def _all_one_line_objects(bodies: list[bytes]) -> bool:
    """True when every body starts with ``{`` and none holds a line break: the usual batch,
    checked with C-level scans (memchr over the joined bodies) instead of a Python step each."""
    try:
        joined = b"".join(bodies)
        return (b"\n" not in joined and b"\r" not in joined
                and all(map(bytes.startswith, bodies, repeat(b"{"))))
    except TypeError:  # a body that is not bytes: the careful path
        return False


class JsonTransformer:
    """Body -> one JSON object (or several with ``lines=True``). A message of several records
    (a block of lines, ``Message.records``) is read as that many JSON lines."""

    def __init__(
        self, schema: str | None = None, lines: bool = False,
        add_attributes: Sequence[str] | None = None,
    ) -> None:
        self.schema: SchemaSpec | None = load_schema(schema) if schema else None
        self.lines = lines
        # "sent_timestamp" -> column "_sent_timestamp"; "sent_timestamp=_sent_at" names it
        self.add_attributes: list[tuple[str, str]] = []
        for item in add_attributes or []:
            name, _, column = item.partition("=")
            self.add_attributes.append((name.strip(), column.strip() or f"_{name.strip()}"))
        self._collision: re.Pattern[bytes] | None = None

    @property
    def multi_record(self) -> bool:
        """Blocks of lines are read without a split (not with ``add_attributes``, whose
        columns are per message: a block's lines need their own ids)."""
        return not self.add_attributes

    def transform(self, messages: Sequence[Message]) -> TransformResult:
        if not self.lines and messages:
            bodies = list(map(_BODY, messages))
            records = count_records(messages)
            if records == len(messages):
                if _all_one_line_objects(bodies):
                    return self._result(messages, bodies, list(range(len(bodies))), [],
                                        one_line=True)
            elif not self.add_attributes:
                text = _blocks_text(bodies, records, min(map(_RECORDS, messages)) > 1)
                if text is not None:  # blocks of lines: one text, never split here
                    rows = list(chain.from_iterable(
                        map(repeat, range(len(messages)), map(_RECORDS, messages))))
                    return TransformResult(JsonLines(TextLines(text, records), rows, {},
                                                     self.schema, True))
        lines: list[bytes] = []
        sources: list[int] = []
        rejected: list[Rejection] = []
        append_line, append_source = lines.append, sources.append
        for index, message in enumerate(messages):
            body = message.body
            if self.lines or message.records > 1:  # JSON lines, or a block of lines
                before = len(lines)
                for line in body.splitlines():
                    if line.strip():
                        append_line(line)
                        append_source(index)
                bad = next((ln for ln in lines[before:] if not ln.lstrip().startswith(b"{")), None)
                if bad is not None:
                    del lines[before:], sources[before:]
                    rejected.append(Rejection(message, "a line is not a JSON object"))
                continue
            if not body.lstrip().startswith(b"{"):
                reason = "empty message" if not body.strip() else "body is not a JSON object"
                rejected.append(Rejection(message, reason))
                continue
            if b"\n" in body or b"\r" in body:  # whitespace between tokens: safe to flatten
                body = body.replace(b"\r", b" ").replace(b"\n", b" ")
            append_line(body)
            append_source(index)
        return self._result(messages, lines, sources, rejected)

    def _result(
        self, messages: Sequence[Message], lines: list[bytes], sources: list[int],
        rejected: list[Rejection], one_line: bool = False,
    ) -> TransformResult:
        columns: dict[str, list[Any]] = {}
        if self.add_attributes:
            lines, sources = self._without_collisions(messages, lines, sources, rejected)
        for name, column in self.add_attributes:
            if name == "message_id":
                columns[column] = [messages[s].id for s in sources]
            else:
                columns[column] = [_attribute(messages[s], name) for s in sources]
        return TransformResult(JsonLines(lines, sources, columns, self.schema, one_line),
                               rejected)

    def _without_collisions(
        self, messages: Sequence[Message], lines: list[bytes], sources: list[int],
        rejected: list[Rejection],
    ) -> tuple[list[bytes], list[int]]:
        """Reject records that have a top-level field named like an added attribute column:
        the column would overwrite the record's own value without a word."""
        pattern = self._collision
        if pattern is None:
            names = b"|".join(re.escape(json.dumps(c).encode()) for _, c in self.add_attributes)
            pattern = self._collision = re.compile(rb"(?:" + names + rb")\s*:")
        bad: dict[int, str] = {}
        for line, src in zip(lines, sources, strict=True):
            if src in bad or not pattern.search(line):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the decoder rejects it with its own reason
            clash = [c for _, c in self.add_attributes if isinstance(record, dict) and c in record]
            if clash:
                bad[src] = (f"field '{clash[0]}' is also the column of an added attribute "
                            "(add_attributes): rename the column, e.g. "
                            f"add_attributes=NAME={clash[0]}_attr")
        if not bad:
            return lines, sources
        rejected.extend(Rejection(messages[src], reason) for src, reason in bad.items())
        keep = [i for i, src in enumerate(sources) if src not in bad]
        return [lines[i] for i in keep], [sources[i] for i in keep]


def _attribute(message: Message, name: str) -> Any:
    """An attribute by name: the message's own (``sent_timestamp``), else one of its message
    attributes (SQS MessageAttributes such as ``trace_id``, under ``message_attributes``)."""
    value = message.attributes.get(name)
    if value is None:
        nested = message.attributes.get("message_attributes")
        if isinstance(nested, Mapping):
            value = nested.get(name)
    return value
