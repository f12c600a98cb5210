"""``ingest schema DIR|s3://bucket/prefix``: the dataset's schema and an Athena DDL for it.

The schema is the dataset's as the encoder reads it back at start: the newest files' footers,
merged (see :mod:`.readback`); partition columns come from ``key=value`` folders in the newest
file's path.
"""

from __future__ import annotations

import re
from typing import Any

import click

_NAME = re.compile(r"[^a-z0-9_]+")


@click.command("schema")
@click.argument("location", metavar="DIR|s3://BUCKET/PREFIX")
@click.option("--table", default=None, help="table name in the DDL [default: the folder's name]")
def schema_command(location: str, table: str | None) -> None:
    """Print the schema of the Parquet dataset at LOCATION and a CREATE TABLE for Athena."""
    from .readback import dataset_files, read_schema

    try:
        found = dataset_files(location)
        schema = read_schema(found) if found is not None else None
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read {location}: {exc}") from None
    if found is None or schema is None:
        raise click.ClickException(f"no Parquet files under {location}")
    newest = found.shown(found.newest[0])
    click.echo(f"-- {found.files} Parquet files; schema merged from the newest "
               f"{len(found.newest)}, the newest {newest}")
    click.echo(schema.to_string(show_field_metadata=False, show_schema_metadata=False))
    click.echo("")
    name = table or _NAME.sub("_", location.rstrip("/").rsplit("/", 1)[-1].lower()) or "events"
    relative = newest[len(location.rstrip("/")):].strip("/")
    partitions = [part.split("=", 1)[0] for part in relative.split("/")[:-1] if "=" in part]
    click.echo(athena_ddl(schema, name, location, partitions))


def athena_ddl(schema: Any, table: str, location: str, partitions: list[str]) -> str:
    """``CREATE EXTERNAL TABLE`` for Athena (Hive DDL) over the dataset."""
    columns = [f"  `{f.name}` {athena_type(f.type)}" for f in schema if f.name not in partitions]
    lines = [f"CREATE EXTERNAL TABLE IF NOT EXISTS `{table}` (", ",\n".join(columns), ")"]
    if partitions:
        lines.append("PARTITIONED BY (" + ", ".join(f"`{p}` string" for p in partitions) + ")")
    where = location if location.startswith("s3://") else "s3://BUCKET/PREFIX"
    lines += ["STORED AS PARQUET", f"LOCATION '{where.rstrip('/')}/'"]
    ddl = "\n".join(lines) + ";"
    if partitions:
        ddl += f"\n-- then: MSCK REPAIR TABLE `{table}`; (or partition projection)"
    return ddl


def athena_type(kind: Any) -> str:
    """An Arrow type in Athena's (Hive's) DDL spelling."""
    import pyarrow as pa

    t = pa.types
    if t.is_boolean(kind):
        return "boolean"
    if t.is_int8(kind):
        return "tinyint"
    if t.is_int16(kind):
        return "smallint"
    if t.is_int32(kind):
        return "int"
    if t.is_integer(kind):
        return "bigint"
    if t.is_float32(kind):
        return "float"
    if t.is_floating(kind):
        return "double"
    if t.is_decimal(kind):
        return f"decimal({kind.precision},{kind.scale})"
    if t.is_string(kind) or t.is_large_string(kind):
        return "string"
    if t.is_binary(kind) or t.is_large_binary(kind):
        return "binary"
    if t.is_timestamp(kind):
        return "timestamp"
    if t.is_date(kind):
        return "date"
    if t.is_list(kind) or t.is_large_list(kind):
        return f"array<{athena_type(kind.value_type)}>"
    if t.is_map(kind):
        return f"map<{athena_type(kind.key_type)},{athena_type(kind.item_type)}>"
    if t.is_struct(kind):
        inner = ",".join(f"{kind.field(i).name}:{athena_type(kind.field(i).type)}"
                         for i in range(kind.num_fields))
        return f"struct<{inner}>"
    return "string"
