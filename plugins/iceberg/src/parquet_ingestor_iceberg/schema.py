"""Arrow schemas of our Parquet files in Iceberg's terms: new tables, partition specs, drift.

Imported only when the sink starts (pyarrow and pyiceberg are heavy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from parquet_ingestor.errors import ConfigError

from .options import WHERE, SpecField

TIMESTAMPTZ = pa.timestamp("us", tz="UTC")
#: key template time unit -> the Iceberg transform that partitions at that grain (no minutes)
UNIT_TRANSFORMS = {"year": "year", "month": "month", "day": "day", "hour": "hour",
                   "minute": "hour", "second": "hour"}


class CommitRefused(ValueError):  # noqa: N818 - reads well at the raise site
    """A commit that can never succeed as it is: retrying it would not help."""


class SchemaMismatch(CommitRefused):
    """A file's schema does not fit the table under the schema policy; names the field."""


_GRAIN = {"hour": 0, "day": 1, "month": 2, "year": 3}
_UNIT_GRAIN = {"second": 0, "minute": 0, "hour": 0, "day": 1, "month": 2, "year": 3}


def check_spec_matches(spec: Sequence[SpecField], time_field: str | None, time_unit: str,
                       fields: Sequence[str]) -> None:
    """Each data file must fall in one partition: a time transform must be on the event time
    field at a grain no finer than the key template's, other terms on ``{field:NAME}`` fields."""
    label = f"{WHERE} option 'partition_spec'"
    for term in spec:
        base = term.transform.split("[")[0]
        if base in _GRAIN:
            if term.source != time_field:
                raise ConfigError(f"{label}: {base}({term.source}) needs --partition-by "
                                  f"event:{term.source} (files are split by event time)")
            if _GRAIN[base] < _UNIT_GRAIN.get(time_unit, 3):
                raise ConfigError(f"{label}: {base}({term.source}) is finer than the key "
                                  f"template's time unit ({time_unit}); a file would span "
                                  "several partitions")
        elif term.source not in fields:
            raise ConfigError(f"{label}: {base}({term.source}) needs {{field:{term.source}}} "
                              "in --key-template (files are split by those fields)")


def table_arrow_schema(schema: pa.Schema) -> pa.Schema:
    """The schema a new table gets from a file's: timestamps as timestamptz (us), no dictionaries,
    JSON/extension columns as their storage type, and no field-id metadata."""
    return pa.schema([pa.field(f.name, _table_type(f.type), nullable=True) for f in schema])


def _table_type(kind: pa.DataType) -> pa.DataType:
    if isinstance(kind, pa.ExtensionType):
        return _table_type(kind.storage_type)
    if pa.types.is_dictionary(kind):
        return _table_type(kind.value_type)
    if pa.types.is_timestamp(kind):
        return TIMESTAMPTZ
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        return pa.binary()
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _table_type(f.type), nullable=True) for f in kind])
    if pa.types.is_map(kind):
        return pa.map_(_table_type(kind.key_type), _table_type(kind.item_type))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_list_view(kind):
        return pa.list_(_table_type(kind.value_type))
    if pa.types.is_null(kind):
        return pa.string()  # a column only ever null so far: text is the likeliest
    if pa.types.is_uint64(kind):
        return pa.int64()
    if pa.types.is_float16(kind):
        return pa.float32()
    return kind


def build_spec(iceberg_schema: Any, fields: Sequence[SpecField]) -> Any:
    """A pyiceberg PartitionSpec for ``fields``; a missing field or a transform that does not
    apply to the field's type is a ConfigError naming it."""
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import parse_transform

    label = f"{WHERE} option 'partition_spec'"
    parts = []
    for index, term in enumerate(fields):
        try:
            source = iceberg_schema.find_field(term.source)
        except ValueError:
            names = ", ".join(f.name for f in iceberg_schema.fields)
            raise ConfigError(f"{label}: no field '{term.source}' in the table (fields: {names})"
                              ) from None
        transform = parse_transform(term.transform)
        if not transform.can_transform(source.field_type):
            raise ConfigError(f"{label}: {term.transform}() does not apply to field "
                              f"'{term.source}' of type {source.field_type}")
        base = term.transform.split("[")[0]
        name = term.source if base == "identity" else f"{term.source}_{base}"
        parts.append(PartitionField(source_id=source.field_id, field_id=1000 + index,
                                    transform=transform, name=name))
    return PartitionSpec(*parts)


def derived_spec(time_field: str | None, time_unit: str,
                 fields: Sequence[str]) -> tuple[SpecField, ...]:
    """The spec matching how the pipeline groups files: event time at the key template's unit,
    then one identity term per ``{field:NAME}`` of the template."""
    spec: list[SpecField] = []
    if time_field:
        spec.append(SpecField(UNIT_TRANSFORMS.get(time_unit, "hour"), time_field))
    spec.extend(SpecField("identity", name) for name in fields)
    return tuple(spec)


def check_fits(table_schema: Any, file_schema: pa.Schema, policy: str) -> bool:
    """Does a file fit the table? True when it fits as is, False when the table must evolve
    first (``evolve``); raises SchemaMismatch naming the field that cannot fit."""
    from pyiceberg.io.pyarrow import _pyarrow_to_schema_without_ids
    from pyiceberg.schema import assign_fresh_schema_ids, promote

    wanted = assign_fresh_schema_ids(_pyarrow_to_schema_without_ids(table_arrow_schema(file_schema)))
    must_evolve = False
    for field in wanted.fields:
        try:
            current = table_schema.find_field(field.name)
        except ValueError:
            if policy == "strict":
                raise SchemaMismatch(f"field '{field.name}' is not in the table "
                                     "(schema_policy=strict)") from None
            must_evolve = True
            continue
        if current.field_type == field.field_type:
            continue
        if not current.field_type.is_primitive or not field.field_type.is_primitive:
            if policy == "evolve":
                must_evolve = True  # nested: union_by_name decides
                continue
            raise SchemaMismatch(f"field '{field.name}' is {field.field_type} in the file but "
                                 f"{current.field_type} in the table (schema_policy=strict)")
        if _widens(field.field_type, current.field_type):
            continue  # int data in a long column, float in double: readers promote
        if policy == "evolve" and _widens(current.field_type, field.field_type):
            must_evolve = True
            continue
        try:
            promote(field.field_type, current.field_type)
        except Exception:  # noqa: BLE001 - pyiceberg raises ResolveError
            raise SchemaMismatch(f"field '{field.name}' is {field.field_type} in the file but "
                                 f"{current.field_type} in the table") from None
    return not must_evolve


def _widens(narrow: Any, wide: Any) -> bool:
    """The safe widenings: int -> long, float -> double."""
    return (str(narrow), str(wide)) in {("int", "long"), ("float", "double")}
