"""The Iceberg sink's options, declared once, and the validated settings built from them.

Imported by ``plugin.py`` at CLI start, so it stays light: no pyiceberg, no pyarrow here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parquet_ingestor.errors import ConfigError
from parquet_ingestor.options import Option

WHERE = "sink 'iceberg'"
#: the pipeline's --target-file-size unless the run sets one (the sink's pipeline_defaults)
TARGET_FILE_SIZE = "128MiB"
TRANSFORMS = ("identity", "year", "month", "day", "hour", "truncate")
_SPEC_PART = re.compile(r"^\s*([a-z]+)\s*\(\s*(?:(\d+)\s*,\s*)?([^()\s,][^(),]*?)\s*\)\s*$")

ICEBERG_OPTIONS: tuple[Option, ...] = (
    Option("table", required=True, help="NAMESPACE.TABLE to append to (created if missing)"),
    Option("warehouse", default="./warehouse",
           help="embedded catalog: a local folder or an s3:// URL for the table files"),
    Option("catalog_uri",
           help="embedded catalog: SQLAlchemy URI (default: sqlite catalog.db in the local "
                "warehouse folder, or in the current folder for a remote warehouse)"),
    Option("catalog_name", default="default", help="embedded catalog: the catalog's name"),
    Option("catalog",
           help="load this catalog the pyiceberg way (.pyiceberg.yaml, PYICEBERG_CATALOG__NAME__*) "
                "instead of the embedded one: REST, Glue, Hive, SQL"),
    Option("catalog_properties", "map", prefix="catalog.",
           help="pyiceberg catalog properties passed through, e.g. catalog.s3.endpoint=URL"),
    Option("create", "bool", default=True,
           help="create a missing table (and namespace) from the first batch's schema"),
    Option("partition_spec",
           help="new tables: e.g. 'day(created_at),identity(country)' (default: "
                "from --partition-by event:FIELD and the key template's time unit)"),
    Option("schema_policy", default="evolve", choices=("evolve", "strict"),
           help="evolve adds new fields and widens int->long, float->double; strict refuses "
                "files with unknown or changed fields"),
    Option("table_properties", "map", help="properties of a new table, key=value,key2=value2"),
    Option("commit_attempts", "int", default=10, min=1, max=100,
           help="tries per snapshot commit (conflicts with other writers are refreshed and retried)"),
)


@dataclass(frozen=True)
class SpecField:
    """One term of ``partition_spec``: ``transform(source)`` or ``truncate(N, source)``."""

    transform: str  # pyiceberg's spelling: day, identity, truncate[4]
    source: str


@dataclass(frozen=True)
class IcebergSettings:
    """Validated, typed Iceberg sink settings; built by :func:`settings_from_options`."""

    namespace: tuple[str, ...]
    table: str
    warehouse: str
    catalog_uri: str
    catalog_name: str = "default"
    catalog: str | None = None
    catalog_properties: Mapping[str, str] = field(default_factory=dict)
    create: bool = True
    partition_spec: tuple[SpecField, ...] | None = None
    schema_policy: str = "evolve"
    table_properties: Mapping[str, str] = field(default_factory=dict)
    commit_attempts: int = 10

    @property
    def identifier(self) -> str:
        return ".".join((*self.namespace, self.table))

    @property
    def remote(self) -> bool:
        return "://" in self.warehouse and not self.warehouse.startswith("file://")


def settings_from_options(**options: Any) -> IcebergSettings:
    """Check what one option alone cannot; raise a one-line ConfigError naming the option."""
    name = (options.get("table") or "").strip()
    parts = name.split(".")
    if len(parts) < 2 or not all(p.strip() for p in parts):
        raise ConfigError(f"{WHERE} option 'table': expected NAMESPACE.TABLE, got {name!r}")
    warehouse = (options.get("warehouse") or "./warehouse").strip()
    if "://" in warehouse and not warehouse.startswith(("s3://", "s3a://", "gs://", "abfs://",
                                                         "abfss://", "file://", "hdfs://")):
        raise ConfigError(f"{WHERE} option 'warehouse': expected a folder or an s3:// URL, "
                          f"got {warehouse!r}")
    if warehouse.startswith("file://"):
        warehouse = warehouse[len("file://"):]
    if "://" not in warehouse:
        warehouse = str(Path(warehouse).expanduser().absolute())
    uri = options.get("catalog_uri") or None
    if uri is None:
        folder = Path.cwd() if "://" in warehouse else Path(warehouse)
        uri = f"sqlite:///{folder / 'catalog.db'}"
    spec = options.get("partition_spec")
    return IcebergSettings(
        namespace=tuple(p.strip() for p in parts[:-1]),
        table=parts[-1].strip(),
        warehouse=warehouse.rstrip("/"),
        catalog_uri=uri,
        catalog_name=options.get("catalog_name") or "default",
        catalog=options.get("catalog") or None,
        catalog_properties=dict(options.get("catalog_properties") or {}),
        create=True if options.get("create") is None else bool(options["create"]),
        partition_spec=parse_partition_spec(spec) if spec else None,
        schema_policy=options.get("schema_policy") or "evolve",
        table_properties=dict(options.get("table_properties") or {}),
        commit_attempts=int(options.get("commit_attempts") or 10),
    )


def parse_partition_spec(text: str) -> tuple[SpecField, ...]:
    """``"day(ts),truncate(4, id)"`` -> SpecFields; an unknown transform is a ConfigError."""
    label = f"{WHERE} option 'partition_spec'"
    terms = [t for t in re.split(r",(?![^()]*\))", text) if t.strip()]
    if not terms:
        raise ConfigError(f"{label}: empty")
    fields: list[SpecField] = []
    for term in terms:
        match = _SPEC_PART.match(term)
        if not match:
            raise ConfigError(f"{label}: expected transform(field) or truncate(N, field), "
                              f"got {term.strip()!r}")
        transform, width, source = match.groups()
        if transform in ("bucket", "void"):
            raise ConfigError(f"{label}: {transform}() is not supported: each data file holds "
                              "one partition, and files are split only by event time and the "
                              "key template's {field:NAME} fields")
        if transform not in TRANSFORMS:
            raise ConfigError(f"{label}: unknown transform {transform!r} in {term.strip()!r} "
                              f"(known: {', '.join(TRANSFORMS)})")
        if transform == "truncate":
            if width is None or int(width) < 1:
                raise ConfigError(f"{label}: truncate needs a width: truncate(N, field)")
            transform = f"{transform}[{int(width)}]"
        elif width is not None:
            raise ConfigError(f"{label}: {transform} takes only a field, got {term.strip()!r}")
        fields.append(SpecField(transform, source))
    return tuple(fields)


def endpoint_properties(warehouse: str) -> dict[str, str]:
    """FileIO properties for an s3:// warehouse from the AWS variables boto3 honours."""
    if not warehouse.startswith(("s3://", "s3a://")):
        return {}
    props: dict[str, str] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        props["s3.endpoint"] = endpoint
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        props["s3.region"] = region
    return props
