"""The built-in components, registered through the same hooks as any plugin.

source ``file`` (JSON-lines files, a directory, a glob or stdin), transformer ``json``,
encoder ``jsonl`` and sink ``file`` (a local directory): enough to use the core alone.
"""

from __future__ import annotations

from typing import Any

from ..hookspecs import hookimpl
from ..options import Option

FILE_SOURCE_OPTIONS = (
    Option("path", "path", required=True,
           help="JSON-lines file, directory, or glob (gzip files too); '-' reads stdin; or a URL "
                "(s3://, gs://, azure://, hdfs://, sftp://, http(s)://; globs and prefixes "
                "on s3/gs/azure; .gz .bz2 .zst .xz by extension) with parquet-ingestor[urls]"),
    Option("read_ahead", "size", default="4MiB", min=1,
           help="bytes of stdin read ahead of the pipeline (bounds memory with slow sinks)"),
    Option("spill", "path", default="ingest-unwritten-{time}-{pid}.jsonl",
           help="file that lines read but not written (abort, failures) are saved to, "
                "{time} and {pid} filled in; the log names it"),
)
REPLAY_OPTIONS = (
    Option("path", "list", required=True,
           help="error-sink record files: files, directories, prefixes or globs, local or URLs "
                "(comma-separated)"),
    Option("force", "bool", default=False,
           help="replay files again although they carry a .replayed marker"),
)
JSON_OPTIONS = (
    Option("schema", "path", help="JSON file mapping column -> Arrow type, e.g. {\"user_id\": \"int64\"}"),
    Option("lines", "bool", default=False, help="each message holds several JSON lines"),
    Option("add_attributes", "list", default=[],
           help="message attributes to add as columns: NAME (column _NAME) or NAME=COLUMN, "
                "e.g. message_id,sent_timestamp=_sent_at"),
)
JSONL_OPTIONS = (
    Option("compression", default="none", choices=("none", "gzip"), help="compress the output"),
)
FILE_SINK_OPTIONS = (
    Option("path", "path", required=True,
           help="root directory; nothing is written outside it; or an s3://, gs:// or azure:// "
                "URL prefix (all or nothing: an object is visible once committed), with "
                "parquet-ingestor[urls]"),
    Option("fsync", "bool", default=True, help="fsync files and directories before commit"),
    Option("stale_temps", "duration", default="1h", min=0,
           help="at start, remove this sink's temporary files older than this, left by a "
                "killed run (0: keep them)"),
)


@hookimpl
def ingest_register_sources(register: Any) -> None:
    register("file", "parquet_ingestor.builtins.file_source:FileSource",
             options=FILE_SOURCE_OPTIONS, help="JSON lines from files, a directory, a glob or stdin")
    register("replay", "parquet_ingestor.replay:ReplaySource", options=REPLAY_OPTIONS,
             help="the messages of error-sink records, again (see `ingest replay`)")


@hookimpl
def ingest_register_transformers(register: Any) -> None:
    register("json", "parquet_ingestor.builtins.json_transformer:JsonTransformer",
             options=JSON_OPTIONS, help="each message body is a JSON object (or JSON lines)")


@hookimpl
def ingest_register_encoders(register: Any) -> None:
    register("jsonl", "parquet_ingestor.builtins.jsonl_encoder:JsonlEncoder",
             options=JSONL_OPTIONS, help="JSON lines, optionally gzip-compressed")


@hookimpl
def ingest_register_sinks(register: Any) -> None:
    register("file", "parquet_ingestor.builtins.file_sink:FileSink",
             options=FILE_SINK_OPTIONS, help="a local directory (temporary name, then rename) or an object store URL")
