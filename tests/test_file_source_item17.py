"""File source details of issue #17: a UTF-8 BOM opening a line is accepted (files and stdin);
lines that fail for good are reported once per batch, not once per input line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BOM = b"\xef\xbb\xbf"

FULL_DISK_SINK = """
import errno
from parquet_ingestor.builtins.file_sink import FileSink
from parquet_ingestor.hookspecs import hookimpl
from parquet_ingestor.options import Option


class FullDisk(FileSink):
    def open(self, key, content_type, metadata):
        raise OSError(errno.ENOSPC, "No space left on device")


@hookimpl
def ingest_register_sinks(register):
    register("fulldisk", FullDisk, options=[Option("path", required=True)])
"""


def test_bom_lines_are_json_objects(tmp_path: Path, run_ingest: Any) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(BOM + b'{"id": 1}\r\n{"id": 2}\n' + BOM + b'{"id": 3}\n')
    for args, stdin in (([f"path={src}"], None), (["path=-"], src.read_text("utf-8"))):
        out = tmp_path / ("out-" + ("stdin" if stdin else "file"))
        proc = run_ingest("--source", "file", "--source-opt", *args, "--sink", "file",
                          "--sink-opt", f"path={out}", "--encoder", "jsonl", input=stdin)
        assert proc.returncode == 0, proc.stderr
        rows = [json.loads(line) for p in out.rglob("*.jsonl") for line in p.read_text().splitlines()]
        assert sorted(r["id"] for r in rows) == [1, 2, 3]


def test_a_full_disk_logs_per_batch_not_per_line(
    tmp_path: Path, run_ingest: Any, make_plugin: Any,
) -> None:
    site = make_plugin(dist="full-disk", entry="fulldisk", code=FULL_DISK_SINK)
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"".join(b'{"id": %d}\n' % i for i in range(5000)))
    proc = run_ingest("--source", "file", "--source-opt", f"path={src}", "--sink", "fulldisk",
                      "--sink-opt", f"path={tmp_path / 'out'}", "--encoder", "jsonl",
                      "--write-attempts", "1", "--batch-max-records", "1000",
                      "--max-deliveries", "3",
                      pythonpath=[site])
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) < 50, f"{len(errors)} ERROR lines for 5000 input lines"
    spilled = list(tmp_path.glob("ingest-unwritten-*.jsonl"))
    assert len(spilled) == 1 and len(spilled[0].read_bytes().splitlines()) == 5000
