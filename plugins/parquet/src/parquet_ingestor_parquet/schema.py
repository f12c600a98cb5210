"""Arrow schemas from what users write: type names, JSON schema files and Python classes.

A type name is Arrow's own spelling: ``int64``, ``string``, ``timestamp[ms]``,
``timestamp[us, UTC]``, ``list<string>``, ``struct<ip: string, port: int32>``,
``decimal128(10, 2)``. A JSON schema file maps column -> type name; a nested JSON object stands
for a struct and a one-element JSON array for a list.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import os
import types
import typing
from collections import abc
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.plugins import load_object
from parquet_ingestor.records import read_schema_file

UTC_MICROS = pa.timestamp("us", tz="UTC")


# ------------------------------------------------------------------------------- type names


class _TypeParser:
    """A small recursive-descent reader for Arrow type names."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> pa.DataType:
        result = self.type_()
        self.skip()
        if self.pos != len(self.text):
            raise ValueError(f"unexpected {self.text[self.pos:]!r}")
        return result

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def word(self) -> str:
        self.skip()
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum()
                                             or self.text[self.pos] in "_/+-."):
            self.pos += 1
        if start == self.pos:
            raise ValueError(f"expected a name at {self.text[start:]!r}")
        return self.text[start:self.pos]

    def peek(self, char: str) -> bool:
        self.skip()
        return self.text.startswith(char, self.pos)

    def expect(self, char: str) -> None:
        if not self.peek(char):
            raise ValueError(f"expected {char!r} at {self.text[self.pos:]!r}")
        self.pos += len(char)

    def field(self) -> pa.Field:
        name = self.word()
        self.expect(":")
        return pa.field(name, self.type_())

    def type_(self) -> pa.DataType:
        name = self.word().lower()
        if name in ("list", "large_list"):
            self.expect("<")
            start = self.pos
            try:  # "list<item: string>" or "list<string>"
                item = self.field()
            except ValueError:
                self.pos = start
                item = pa.field("item", self.type_())
            self.expect(">")
            return pa.list_(item) if name == "list" else pa.large_list(item)
        if name == "struct":
            self.expect("<")
            fields = []
            while not self.peek(">"):
                fields.append(self.field())
                if not self.peek(">"):
                    self.expect(",")
            self.expect(">")
            return pa.struct(fields)
        if name == "map":
            self.expect("<")
            key = self.type_()
            self.expect(",")
            value = self.type_()
            self.expect(">")
            return pa.map_(key, value)
        if name in ("decimal", "decimal128", "decimal256"):
            self.expect("(")
            precision = int(self.word())
            self.expect(",")
            scale = int(self.word())
            self.expect(")")
            return (pa.decimal256 if name == "decimal256" else pa.decimal128)(precision, scale)
        if name == "timestamp":
            unit, tz = "us", None
            if self.peek("["):
                self.expect("[")
                unit = self.word()
                if self.peek(","):
                    self.expect(",")
                    tz = self.word()
                    if tz == "tz":
                        self.expect("=")
                        tz = self.word()
                self.expect("]")
            return pa.timestamp(unit, tz=tz)
        if self.peek("["):  # time32[ms], duration[s], date32[day]
            self.expect("[")
            name = f"{name}[{self.word()}]"
            self.expect("]")
        return pa.type_for_alias(name)


def parse_type(name: str) -> pa.DataType:
    """``"list<string>"`` -> ``pa.list_(pa.string())``; ValueError when it is not a type."""
    try:
        return _TypeParser(name).parse()
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not an Arrow type: {name!r} ({exc})") from None


def _spec_type(value: Any, where: str) -> pa.DataType:
    if isinstance(value, str):
        try:
            return parse_type(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if isinstance(value, Mapping):
        return pa.struct([pa.field(k, _spec_type(v, f"{where}.{k}")) for k, v in value.items()])
    if isinstance(value, list) and len(value) == 1:
        return pa.list_(_spec_type(value[0], f"{where}[]"))
    raise ConfigError(f"{where}: expected a type name, an object or a one-element list, "
                      f"got {value!r}")


def schema_from_spec(spec: Mapping[str, Any], where: str = "schema") -> pa.Schema:
    """A column -> type-name mapping (the ``JsonLines.schema`` form) as an Arrow schema."""
    return pa.schema([pa.field(name, _spec_type(value, f"{where} column '{name}'"))
                      for name, value in spec.items()])


# ----------------------------------------------------------------------------- Python classes


def _is_model(cls: Any) -> bool:
    return isinstance(cls, type) and (dataclasses.is_dataclass(cls) or hasattr(cls, "model_fields"))


def _python_type(hint: Any, where: str) -> tuple[pa.DataType, bool]:
    """(Arrow type, nullable) for one type hint."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return _python_type(args[0], where)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise ConfigError(f"{where}: unions other than Optional[X] have no Arrow type")
        return _python_type(rest[0], where)[0], True
    if origin in (list, set, frozenset, tuple, abc.Sequence, abc.Set):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise ConfigError(f"{where}: only tuple[X, ...] has an Arrow type")
        if not args:
            raise ConfigError(f"{where}: give the item type, e.g. list[str]")
        item = _python_type(args[0], f"{where}[]")[0]
        return pa.list_(pa.field("item", item, nullable=True)), False
    if origin is typing.Literal:
        kinds = {type(a) for a in args}
        if len(kinds) == 1:
            return _python_type(kinds.pop(), where)
        raise ConfigError(f"{where}: Literal values of mixed types have no Arrow type")
    if hint is bool:
        return pa.bool_(), False
    if hint is int:
        return pa.int64(), False
    if hint is float:
        return pa.float64(), False
    if hint is str:
        return pa.string(), False
    if hint is bytes:
        return pa.binary(), False
    if hint is dt.datetime:
        return UTC_MICROS, False
    if hint is dt.date:
        return pa.date32(), False
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = {type(m.value) for m in hint}
        if values == {int}:
            return pa.int64(), False
        return pa.string(), False
    if _is_model(hint):
        return pa.struct(list(schema_from_class(hint))), False
    raise ConfigError(f"{where}: type {hint!r} has no Arrow equivalent")


def schema_from_class(cls: type) -> pa.Schema:
    """Arrow schema of a dataclass or pydantic model; ``Optional[X]`` fields are nullable.

    Nested dataclasses/models become structs, ``list[X]`` lists, ``datetime``
    ``timestamp[us, UTC]``. Pydantic aliases name the columns, as in the JSON.
    """
    where = f"schema class {cls.__module__}.{cls.__qualname__}"
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:  # noqa: BLE001 - unresolvable forward references
        raise ConfigError(f"{where}: cannot read its type hints: {exc}") from None
    columns: list[tuple[str, str]] = []
    if dataclasses.is_dataclass(cls):
        columns = [(f.name, f.name) for f in dataclasses.fields(cls)]
    elif hasattr(cls, "model_fields"):
        columns = [(name, info.alias or name) for name, info in cls.model_fields.items()]
    else:
        raise ConfigError(f"{where} is neither a dataclass nor a pydantic model")
    fields = []
    for attr, column in columns:
        arrow_type, nullable = _python_type(hints[attr], f"{where} field '{attr}'")
        fields.append(pa.field(column, arrow_type, nullable=nullable))
    return pa.schema(fields)


# ------------------------------------------------------------------------------- the option


def load_schema(ref: str) -> pa.Schema:
    """The ``schema`` option: a JSON file path, or ``package.module:Class``."""
    if os.path.exists(ref) or ref.lower().endswith(".json"):
        spec = read_schema_file(ref, "encoder 'parquet' option 'schema'")
        return schema_from_spec(spec, f"schema file {ref}")
    if ":" in ref:
        obj = load_object(ref)
        if not _is_model(obj):
            raise ConfigError(f"encoder 'parquet' option 'schema': {ref!r} is not a dataclass "
                              f"or pydantic model")
        return schema_from_class(obj)
    raise ConfigError(f"encoder 'parquet' option 'schema': {ref!r} is neither an existing JSON "
                      f"file nor 'package.module:Class'")


# ------------------------------------------------------------------------------------ helpers


def relaxed(schema: pa.Schema) -> pa.Schema:
    """The same schema with every field nullable, at every depth (what readers are given)."""
    return pa.schema([_relax_field(f) for f in schema], metadata=schema.metadata)


def _relax_field(field: pa.Field) -> pa.Field:
    return pa.field(field.name, _relax_type(field.type), nullable=True, metadata=field.metadata)


def _relax_type(arrow_type: pa.DataType) -> pa.DataType:
    if pa.types.is_struct(arrow_type):
        return pa.struct([_relax_field(arrow_type.field(i)) for i in range(arrow_type.num_fields)])
    if pa.types.is_list(arrow_type):
        return pa.list_(_relax_field(arrow_type.value_field))
    if pa.types.is_large_list(arrow_type):
        return pa.large_list(_relax_field(arrow_type.value_field))
    return arrow_type


def fingerprint(schema: pa.Schema) -> str:
    """Short, stable id of a schema (sha256 of its Arrow serialization, without metadata)."""
    return hashlib.sha256(schema.remove_metadata().serialize().to_pybytes()).hexdigest()[:16]
