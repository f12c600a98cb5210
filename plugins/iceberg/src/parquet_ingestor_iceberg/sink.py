"""The ``iceberg`` sink: data files written once into the table's location, one snapshot per
commit set.

``begin()`` gives a commit set (:class:`IcebergTransaction`); its files become visible together,
as one snapshot whose summary carries ``ingest.commit-id``. Plain ``open()`` (the pipeline
before commit sets) commits each file as its own snapshot. pyiceberg is imported at ``start``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from parquet_ingestor.errors import ConfigError
from parquet_ingestor.interfaces import SinkRequirements
from parquet_ingestor.options import parse_options

from .catalog import one_line, open_catalog
from .files import DataFileWriter, StagedFile, delete_quietly, local_path, sync_local
from .options import (
    ICEBERG_OPTIONS,
    TARGET_FILE_SIZE,
    WHERE,
    IcebergSettings,
    SpecField,
    settings_from_options,
)

log = logging.getLogger(__name__)

COMMIT_ID = "ingest.commit-id"
LOOKBACK = 500  # snapshots searched for a commit id before a retried commit adds its files
NAME_MAPPING = "schema.name-mapping.default"
#: properties of the tables we create (``table_properties`` overrides): a streaming writer
#: commits often, so old metadata files are dropped and the metadata log stays short
NEW_TABLE = {"write.metadata.delete-after-commit.enabled": "true",
             "write.metadata.previous-versions-max": "20"}


class IcebergSink:
    """Appends Parquet files to an Iceberg table; atomic per commit set.

    Built by the CLI with every declared option, or from Python with the ones you need:
    ``IcebergSink(table="demo.events", warehouse="/data/warehouse")``.
    """

    #: files of ~TARGET_FILE_SIZE that outlive a batch unless the run says otherwise
    #: (``--target-file-size``): a snapshot per 5 MiB batch would make many small files and
    #: long snapshot histories, and each commit costs CPU that grows with that history
    pipeline_defaults: Mapping[str, str] = MappingProxyType({"target_file_size": TARGET_FILE_SIZE})

    def __init__(self, **options: Any) -> None:
        given = {name: value for name, value in options.items() if value is not None}
        self.settings: IcebergSettings = settings_from_options(
            **parse_options(ICEBERG_OPTIONS, given, WHERE))
        self._catalog: Any = None
        self._lock = threading.Lock()  # opening the catalog
        self._commit_lock = threading.Lock()  # commits: one at a time per sink
        self._metrics: Any = None
        self._derived: tuple[SpecField, ...] = ()
        self._data_root: str | None = None
        self._io: Any = None
        self._writer_version = f"parquet-ingestor {_version()}"
        self._restore_log_level: Callable[[], None] = _nothing
        self._active: set[DataFileWriter] = set()  # files being written (not finished)
        self._unsure: set[str] = set()  # commit ids whose last try failed (may have landed)
        self._fits: dict[tuple[Any, ...], bool] = {}  # (table, schema id, file schema): fits
        self._plans: dict[tuple[Any, ...], tuple[Any, Any]] = {}  # statistics plans by schema
        self._kept: Any = None  # the table as our last commit left it (under _commit_lock)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, context: Any) -> None:
        """Open the catalog and check the table (missing with create=false: ConfigError)."""
        self._metrics = getattr(context, "metrics", None)
        quiet = logging.getLogger("pyiceberg")
        if quiet.level == logging.NOTSET:  # its INFO lines (one per FileIO) drown ours
            quiet.setLevel(logging.WARNING)
            self._restore_log_level = lambda: quiet.setLevel(logging.NOTSET)
        pipeline = getattr(context, "settings", None)
        self._derived = _derived_from(pipeline)
        if pipeline is not None and self.settings.partition_spec is not None:
            from parquet_ingestor.keys import KeyTemplate

            from .schema import check_spec_matches

            template = KeyTemplate(getattr(pipeline, "key_template", "") or "{random}")
            check_spec_matches(self.settings.partition_spec,
                               getattr(pipeline, "event_time_field", None),
                               template.time_unit, template.fields)
        self._ready()

    def close(self) -> None:
        """Delete files still being written, release the catalog's connections. Idempotent."""
        with self._lock:
            leftovers = list(self._active)
        for writer in leftovers:
            log.warning("closing the iceberg sink: deleting unfinished data file %s", writer.path)
            writer.abort()
        with self._lock:
            catalog, self._catalog = self._catalog, None
        self._kept = None
        self._restore_log_level()
        self._restore_log_level = _nothing
        engine = getattr(catalog, "engine", None)
        if engine is not None:
            engine.dispose()

    # -- the sink interface ---------------------------------------------------------------

    def begin(self) -> IcebergTransaction:
        """A commit set: every file opened in it lands in one snapshot."""
        self._ready()
        return IcebergTransaction(self)

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> Any:
        """One file as its own snapshot (for pipelines that do not use commit sets)."""
        transaction = self.begin()
        return _SnapshotPerFile(transaction.open(key, content_type, metadata), transaction,
                                metadata, self._writer_version)

    def url(self, key: str) -> str:
        self._ready()
        return f"{self._data_root}/{key.lstrip('/')}"

    def requirements(self) -> SinkRequirements:
        """The table's Arrow schema with field ids, for an encoder that can write to it.

        Before the table exists (it is created from the first file) only ``field_ids`` is set.
        """
        self._ready()
        table = self._load()
        if table is None:
            return SinkRequirements(field_ids=True)
        from pyiceberg.io.pyarrow import schema_to_pyarrow

        schema = table.schema()
        fields = tuple(schema.find_column_name(f.source_id) or "" for f in table.spec().fields)
        return SinkRequirements(schema=schema_to_pyarrow(schema), partition_fields=fields,
                                field_ids=True)

    @property
    def catalog(self) -> Any:
        """The pyiceberg catalog (opened on first use)."""
        return self._ready()

    def table(self) -> Any:
        """The pyiceberg table, freshly loaded, or None while it does not exist."""
        self._ready()
        return self._load()

    def __repr__(self) -> str:
        return f"IcebergSink({self.settings.identifier})"

    # -- internals ----------------------------------------------------------------------

    def _ready(self) -> Any:
        if self._catalog is not None:  # set once, last: no lock needed to read it
            return self._catalog
        with self._lock:
            if self._catalog is None:
                catalog = open_catalog(self.settings)
                table = self._check_table(catalog)
                if table is not None:
                    if self.settings.partition_spec is not None:  # names real fields?
                        from .schema import build_spec

                        build_spec(table.schema(), self.settings.partition_spec)
                    self._data_root = f"{table.location().rstrip('/')}/data"
                    self._io = table.io
                else:
                    location = _default_location(catalog, self.settings)
                    self._data_root = f"{location}/data"
                    self._io = _file_io(catalog, location)
                self._catalog = catalog
            return self._catalog

    def _check_table(self, catalog: Any) -> Any:
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        ident = self.settings.identifier
        try:
            return catalog.load_table(ident)
        except (NoSuchTableError, NoSuchNamespaceError):
            if not self.settings.create:
                raise ConfigError(f"{WHERE} option 'table': table '{ident}' does not exist "
                                  "(and create=false)") from None
            return None
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - unreachable catalog, bad credentials...
            raise ConfigError(f"{WHERE}: cannot load table '{ident}': {one_line(exc)}") from None

    def _load(self) -> Any:
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        try:
            return self._catalog.load_table(self.settings.identifier)
        except (NoSuchTableError, NoSuchNamespaceError):
            return None

    def _current(self) -> Any:
        """The table as the catalog has it now, for a commit (under ``_commit_lock``): the one
        our last commit left when the catalog still points at its metadata file (asked with
        one query; reading and parsing the metadata file again was a quarter of a commit),
        else freshly loaded."""
        kept, self._kept = self._kept, None
        if kept is not None and _metadata_location(self._catalog, kept) == kept.metadata_location:
            return kept
        return self._load()

    def _create(self, file_schema: Any) -> Any:
        """Create the table (and namespace) from a data file's schema; another writer may win."""
        from pyiceberg.catalog import Catalog
        from pyiceberg.exceptions import TableAlreadyExistsError
        from pyiceberg.schema import assign_fresh_schema_ids

        from .schema import build_spec, table_arrow_schema

        s = self.settings
        schema = assign_fresh_schema_ids(
            Catalog._convert_schema_if_needed(table_arrow_schema(file_schema)))
        terms = s.partition_spec if s.partition_spec is not None else self._derived
        spec = build_spec(schema, terms)
        properties = {NAME_MAPPING: schema.name_mapping.model_dump_json(), **NEW_TABLE,
                      **dict(s.table_properties)}
        _ensure_namespace(self._catalog, s.namespace)  # dropped since start?
        try:
            table = self._catalog.create_table(
                s.identifier, schema=schema, partition_spec=spec,
                location=self._data_root[: -len("/data")] if self._data_root else None,
                properties=properties)
        except TableAlreadyExistsError:
            return self._catalog.load_table(s.identifier)
        except Exception:
            # another writer created it at the same moment (the SQL catalog's check-then-insert
            # surfaces that as a constraint error): use theirs
            table = self._load()
            if table is None:
                raise
            return table
        log.info("created table %s at %s (partitioned by %s)", s.identifier, table.location(),
                 ", ".join(f"{t.transform}({t.source})" for t in terms) or "nothing",
                 extra={"event": "iceberg_table_created", "table": s.identifier})
        mapping = table.schema().name_mapping.model_dump_json()
        if table.properties.get(NAME_MAPPING) != mapping:  # the catalog assigned other ids
            with table.transaction() as tx:
                tx.set_properties(**{NAME_MAPPING: mapping})
        return table

    def _commit(self, files: Sequence[StagedFile], summary: Mapping[str, str]) -> Any:
        """Add ``files`` to the table as one snapshot; returns it.

        Every try after the first looks for ``ingest.commit-id`` among recent snapshots first,
        so a commit whose answer was lost is never applied twice. Conflicts are refreshed and
        retried; a schema that does not fit (SchemaMismatch) fails at once.
        """
        from pyiceberg.exceptions import CommitFailedException

        from .schema import CommitRefused

        props = self._summary(files, summary)
        commit_id = props[COMMIT_ID]
        rows = sum(f.rows for f in files)
        attempts = self.settings.commit_attempts
        self._ready()
        queued = time.monotonic()
        with self._commit_lock:
            started = time.monotonic()  # commit latency: from here (waiting for the lock apart)
            for attempt in range(1, attempts + 1):
                try:
                    table = self._current()
                    if table is None:
                        table = self._create(files[0].metadata.schema.to_arrow_schema())
                    elif attempt > 1 or commit_id in self._unsure:
                        found = _find_commit(table, commit_id)
                        if found is not None:
                            self._unsure.discard(commit_id)
                            log.info("commit %s was already applied (snapshot %d); not adding "
                                     "its files again", commit_id, found.snapshot_id)
                            _drop_rewritten(table, found, files)
                            return self._committed(found, files, rows, started, queued)
                    table = self._fit_schema(table, files)
                    plan = self._statistics_plan(table)
                    entries = [_data_file(table, f, plan) for f in files]  # CommitRefused
                    base = table.current_snapshot()
                    with _transaction(table) as tx:  # pyiceberg rebases on conflicts itself
                        if table.metadata.name_mapping() is None:
                            tx.set_properties(**{NAME_MAPPING:
                                                 table.schema().name_mapping.model_dump_json()})
                        with tx.update_snapshot(snapshot_properties=props).fast_append() as add:
                            for entry in entries:
                                add.append_data_file(entry)
                    self._unsure.discard(commit_id)
                    self._kept = table
                    snapshot = table.current_snapshot()
                    # local warehouse: what the catalog now points at is on disk before acks
                    sync_local(*_new_metadata(table, snapshot))
                    if snapshot.parent_snapshot_id != (base.snapshot_id if base else None):
                        self._count("iceberg_commit_conflicts")  # rebased on another writer's
                    return self._committed(snapshot, files, rows, started, queued)
                except (CommitRefused, ConfigError):
                    raise
                except CommitFailedException as exc:
                    self._count("iceberg_commit_conflicts")
                    if attempt == attempts:
                        self._unsure.add(commit_id)
                        raise
                    log.info("commit conflict on %s (try %d of %d), refreshing: %s",
                             self.settings.identifier, attempt, attempts, exc)
                except Exception as exc:
                    if attempt == attempts:
                        self._unsure.add(commit_id)  # its answer may be lost: look next time
                        raise
                    log.warning("commit to %s failed (try %d of %d), retrying: %s: %s",
                                self.settings.identifier, attempt, attempts,
                                type(exc).__name__, exc)
                time.sleep(min(2.0, 0.05 * 2 ** attempt) * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")

    def _fit_schema(self, table: Any, files: Sequence[StagedFile]) -> Any:
        """Evolve the table for new fields and widenings (``evolve``) or refuse (``strict``)."""
        from .schema import SchemaMismatch, check_fits, table_arrow_schema

        policy = self.settings.schema_policy
        for f in files:
            file_schema = f.metadata.schema.to_arrow_schema()
            key = (table.metadata.table_uuid, table.metadata.current_schema_id, file_schema)
            if key in self._fits:  # most files have the schema of the last one
                continue
            if check_fits(table.schema(), file_schema, policy):
                if len(self._fits) >= 64:
                    self._fits.clear()
                self._fits[key] = True
                continue
            try:
                with table.update_schema() as update:
                    update.union_by_name(table_arrow_schema(file_schema))
            except Exception as exc:  # noqa: BLE001 - pyiceberg's ValueError/ResolveError
                if type(exc).__name__ == "CommitFailedException":
                    raise
                raise SchemaMismatch(f"cannot evolve {self.settings.identifier}: {exc}") from None
            log.info("evolved the schema of %s: %s", self.settings.identifier, table.schema(),
                     extra={"event": "iceberg_schema_evolved"})
        return table

    def _statistics_plan(self, table: Any) -> tuple[Any, Any]:
        """pyiceberg's statistics plan and Parquet column mapping for the table's schema and
        properties, computed once per schema (each walks the whole schema)."""
        from pyiceberg.io.pyarrow import compute_statistics_plan, parquet_path_to_id_mapping

        metadata = table.metadata
        key = (metadata.table_uuid, metadata.current_schema_id,
               tuple(sorted(metadata.properties.items())))
        plan = self._plans.get(key)
        if plan is None:
            schema = metadata.schema()
            plan = (compute_statistics_plan(schema, metadata.properties),
                    parquet_path_to_id_mapping(schema))
            self._plans = {key: plan}
        return plan

    def _summary(self, files: Sequence[StagedFile], summary: Mapping[str, str]) -> dict[str, str]:
        props = {str(k): str(v) for k, v in summary.items()}
        props.setdefault(COMMIT_ID, uuid.uuid4().hex)
        props.setdefault("ingest.records", str(sum(f.rows for f in files)))
        props.setdefault("ingest.writer", self._writer_version)
        return props

    def _committed(self, snapshot: Any, files: Sequence[StagedFile], rows: int,
                   started: float, queued: float) -> Any:
        seconds = time.monotonic() - started
        self._count("iceberg_commits")
        self._count("iceberg_commit_seconds", seconds)
        log.info("committed snapshot %d to %s: %d files, %d rows in %.3fs",
                 snapshot.snapshot_id, self.settings.identifier, len(files), rows, seconds,
                 extra={"event": "iceberg_commit", "table": self.settings.identifier,
                        "snapshot_id": snapshot.snapshot_id, "files": len(files), "rows": rows,
                        "duration": round(seconds, 4), "queued": round(started - queued, 4)})
        return snapshot

    def _forget(self, writer: DataFileWriter) -> None:
        with self._lock:
            self._active.discard(writer)

    def _count(self, name: str, amount: float = 1) -> None:
        if self._metrics is not None:
            self._metrics.incr(name, amount)


class IcebergTransaction:
    """A commit set on an :class:`IcebergSink` (see ``SinkTransaction`` in the core).

    Threads: one thread at a time; commits of different transactions are serialised per sink.
    """

    def __init__(self, sink: IcebergSink) -> None:
        self.sink = sink
        self._staged: list[StagedFile] = []
        self._writers: list[DataFileWriter] = []
        self._tried = False
        self.snapshot: Any = None

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> DataFileWriter:
        sink = self.sink
        writer = DataFileWriter(sink._io, sink.url(key), metadata, self._staged.append,
                                on_done=sink._forget)
        with sink._lock:
            sink._active.add(writer)
        self._writers.append(writer)
        return writer

    def commit(self, summary: Mapping[str, str]) -> None:
        """Add every staged file as one snapshot; a retry with the same commit id is safe."""
        from .schema import CommitRefused

        if not self._staged:
            return
        self._tried = True
        try:
            self.snapshot = self.sink._commit(list(self._staged), summary)
        except (CommitRefused, ConfigError):
            self._tried = False  # refused before reaching the catalog: the files can go
            raise
        self._staged.clear()
        self._writers.clear()

    def join(self, other: object) -> bool:
        """Take over ``other``'s staged files (a set of this sink whose files are all staged),
        so one commit makes one snapshot of both (files closing together at a run's end)."""
        if (not isinstance(other, IcebergTransaction) or other.sink is not self.sink
                or other._tried or len(other._staged) != len(other._writers)):
            return False
        self._staged += other._staged
        self._writers += other._writers
        other._staged, other._writers = [], []
        return True

    def abort(self) -> None:
        """Delete the files of this set, unless a commit of them was tried: its answer may have
        been lost, so they may be in the table (at worst they stay as orphans)."""
        writers, self._writers = self._writers, []
        staged, self._staged = self._staged, []
        if self._tried:
            if staged:
                log.warning("leaving %d data files of a failed commit in place (they may be in "
                            "the table; unreferenced ones are orphans)", len(staged))
            return
        for writer in writers:
            writer.abort()
        for f in staged:
            if not any(w.path == f.path for w in writers):
                delete_quietly(self.sink._io, f.path)


class _SnapshotPerFile:
    """A writer whose ``commit`` publishes its file as a snapshot of its own."""

    def __init__(self, writer: DataFileWriter, transaction: IcebergTransaction,
                 metadata: Mapping[str, str], writer_version: str) -> None:
        self._writer = writer
        self._transaction = transaction
        self._summary = {COMMIT_ID: uuid.uuid4().hex, "ingest.writer": writer_version}
        for ours, theirs in (("ingest.records", "ingest-records"),
                             ("ingest.messages", "ingest-messages")):
            if theirs in metadata:
                self._summary[ours] = str(metadata[theirs])

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return self._writer.write(data)

    def commit(self) -> None:
        self._writer.commit()
        self._transaction.commit(self._summary)

    def abort(self) -> None:
        self._transaction.abort()


def _transaction(table: Any) -> Any:
    """``table.transaction()``, minus a deep copy of the whole table metadata each time the
    transaction reads it (about 15 per fast append, each growing with the snapshot count:
    most of a commit's CPU). The metadata is a frozen model: none is copied (see ``_staged``),
    and one is built per staged state."""
    global _CachedTransaction
    if _CachedTransaction is None:
        from pyiceberg.table import Transaction

        class CachedTransaction(Transaction):  # type: ignore[misc]
            _cached: tuple[Any, int, Any] | None = None

            @property
            def table_metadata(self) -> Any:
                base, updates = self._table.metadata, len(self._updates)
                if not updates:  # nothing staged yet: the metadata as loaded (frozen)
                    return base
                cached = self._cached
                if cached is None or cached[0] is not base or cached[1] != updates:
                    cached = (base, updates, _staged(base, self._updates))
                    self._cached = cached
                return cached[2]

        _CachedTransaction = CachedTransaction
    return _CachedTransaction(table)


_CachedTransaction: Any = None


def _staged(base: Any, updates: tuple[Any, ...]) -> Any:
    """pyiceberg's ``update_table_metadata(base, updates)`` as ``Transaction.table_metadata``
    calls it, without its final deep copy of the result: the updates build new frozen models
    and containers (``model_copy(update=...)``), so nothing shared with ``base`` is changed."""
    from datetime import datetime

    from pyiceberg.table.update import _apply_table_update, _TableMetadataUpdateContext
    from pyiceberg.utils.datetime import datetime_to_millis

    context = _TableMetadataUpdateContext()
    metadata = base
    for update in updates:
        metadata = _apply_table_update(update, metadata, context)
    if context.has_changes() and base.last_updated_ms == metadata.last_updated_ms:
        metadata = metadata.model_copy(
            update={"last_updated_ms": datetime_to_millis(datetime.now().astimezone())})
    metadata.spec().check_compatible(metadata.schema())
    metadata.sort_order().check_compatible(metadata.schema())
    return metadata


def _metadata_location(catalog: Any, table: Any) -> str | None:
    """Where the SQL catalog says ``table``'s current metadata file is (None: another kind of
    catalog, or the table is gone)."""
    from pyiceberg.catalog.sql import IcebergTables, SqlCatalog
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    if type(catalog) is not SqlCatalog:
        return None
    *namespace, name = table.name()
    with Session(catalog.engine) as session:
        location = session.scalar(select(IcebergTables.metadata_location).where(
            IcebergTables.catalog_name == catalog.name,
            IcebergTables.table_namespace == ".".join(namespace),
            IcebergTables.table_name == name))
    return str(location) if location else None


def _drop_rewritten(table: Any, snapshot: Any, files: Sequence[StagedFile]) -> None:
    """Files of a commit set written again after its first commit landed unseen: the table has
    the first copies, so these are deleted (the same files retried are kept, of course)."""
    added = {entry.data_file.file_path
             for manifest in snapshot.manifests(table.io)
             if manifest.added_snapshot_id == snapshot.snapshot_id
             for entry in manifest.fetch_manifest_entry(table.io)}
    for f in files:
        if f.path not in added:
            delete_quietly(table.io, f.path)


def _find_commit(table: Any, commit_id: str) -> Any:
    """The snapshot whose summary has ``commit_id``, among the last LOOKBACK of the current
    branch's history, or None."""
    by_id = {s.snapshot_id: s for s in table.snapshots()}
    snapshot = table.current_snapshot()
    for _ in range(LOOKBACK):
        if snapshot is None:
            return None
        summary = snapshot.summary
        if summary is not None and summary[COMMIT_ID] == commit_id:
            return snapshot
        parent = snapshot.parent_snapshot_id
        snapshot = by_id.get(parent) if parent is not None else None
    return None


def _data_file(table: Any, f: StagedFile, plan: tuple[Any, Any]) -> Any:
    """The manifest entry for a finished Parquet file: statistics and partition from its footer
    (``plan``: the table's statistics plan and column mapping, see ``_statistics_plan``)."""
    from pyiceberg.io.pyarrow import data_file_statistics_from_parquet_metadata
    from pyiceberg.manifest import DataFile, DataFileContent, FileFormat

    from .schema import CommitRefused

    metadata = table.metadata
    schema = metadata.schema()
    try:
        stats = data_file_statistics_from_parquet_metadata(
            parquet_metadata=f.metadata, stats_columns=plan[0], parquet_column_mapping=plan[1])
        partition = stats.partition(metadata.spec(), schema)
    except (KeyError, ValueError) as exc:
        raise CommitRefused(f"cannot add {f.path} to {'.'.join(table.name())}: {exc}") from None
    return DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=f.path,
        file_format=FileFormat.PARQUET,
        partition=partition,
        file_size_in_bytes=f.size,
        sort_order_id=None,
        spec_id=metadata.default_spec_id,
        equality_ids=None,
        key_metadata=None,
        **stats.to_serialized_dict(),
    )


def _derived_from(settings: Any) -> tuple[SpecField, ...]:
    """The partition spec implied by the pipeline's --partition-by and --key-template."""
    if settings is None:
        return ()
    from parquet_ingestor.keys import KeyTemplate

    from .schema import derived_spec

    time_field = getattr(settings, "event_time_field", None)
    template = KeyTemplate(getattr(settings, "key_template", "") or "{random}")
    return derived_spec(time_field, template.time_unit, template.fields)


def _ensure_namespace(catalog: Any, namespace: tuple[str, ...]) -> None:
    """Create ``namespace`` unless it exists. Another writer creating it at the same moment is
    fine: the SQL catalog checks, then inserts, so the loser sees a constraint error."""
    from pyiceberg.exceptions import NamespaceAlreadyExistsError

    try:
        catalog.create_namespace(namespace)
    except NamespaceAlreadyExistsError:
        pass
    except Exception:
        if not _namespace_exists(catalog, namespace):
            raise


def _namespace_exists(catalog: Any, namespace: tuple[str, ...]) -> bool:
    try:
        catalog.load_namespace_properties(namespace)
    except Exception:  # noqa: BLE001 - missing, or the catalog cannot tell
        return False
    return True


def _default_location(catalog: Any, settings: IcebergSettings) -> str:
    """Where the catalog will put the table (its files are written there before it exists).

    The namespace is created first: catalogs derive a table's location from its namespace's.
    """
    try:
        _ensure_namespace(catalog, settings.namespace)
    except Exception as exc:  # noqa: BLE001 - no rights to create it: a setup problem
        raise ConfigError(f"{WHERE} option 'table': cannot create namespace "
                          f"'{'.'.join(settings.namespace)}': {one_line(exc)}") from None
    resolve = getattr(catalog, "_resolve_table_location", None)
    if callable(resolve):
        try:
            return str(resolve(None, ".".join(settings.namespace), settings.table)).rstrip("/")
        except Exception:  # noqa: BLE001 - fall back on the warehouse below
            log.debug("cannot resolve the location of %s", settings.identifier, exc_info=True)
    warehouse = (catalog.properties.get("warehouse") if settings.catalog
                 else settings.warehouse)
    if not warehouse or "://" not in warehouse and not warehouse.startswith("/"):
        raise ConfigError(f"{WHERE} option 'table': table '{settings.identifier}' does not "
                          f"exist and catalog '{settings.catalog}' does not say where new "
                          "tables go: create the table first, or set catalog.warehouse=URL")
    return f"{warehouse.rstrip('/')}/{'.'.join(settings.namespace)}.db/{settings.table}"


def _file_io(catalog: Any, location: str) -> Any:
    from pyiceberg.io import load_file_io

    return load_file_io(dict(catalog.properties), location)


def _nothing() -> None:
    pass


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("parquet-ingestor")
    except PackageNotFoundError:
        return "unknown"


def _new_metadata(table: Any, snapshot: Any) -> list[str]:
    """The files a commit wrote besides the data files: the table metadata, the manifest list
    and the manifests the snapshot added (read from the list: local warehouses only, where
    they are fsynced; on an object store the upload made them durable)."""
    found = [table.metadata_location, snapshot.manifest_list]
    if local_path(table.metadata_location) is not None:
        found += [m.manifest_path for m in snapshot.manifests(table.io)
                  if m.added_snapshot_id == snapshot.snapshot_id]
    return found
