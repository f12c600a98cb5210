"""Findings of a randomized differential test (JSON lines in, Parquet and error sink read back).

The promise: every input line ends in exactly one place, written once with every value exactly
(only the conversions of docs/types.md allowed), or in the error sink with its raw line, its own
``FILE:LINE`` id and a reason. Each test is a minimal input that broke it (each fails on the
code before its fix).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq


def rows(out: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted(out.rglob("*.parquet")):
        if not path.name.startswith("."):
            found += pq.read_table(path).to_pylist()
    return found


def errors(err: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if err.exists():
        for path in sorted(err.rglob("*.jsonl")):
            if not path.name.startswith("."):
                found += [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return found


def ingest(run_ingest: Any, tmp_path: Path, lines: list[str], *extra: str
           ) -> tuple[Path, list[dict[str, Any]], list[dict[str, Any]]]:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out, err = tmp_path / "out", tmp_path / "err"
    proc = run_ingest("--source", "file", "--source-opt", f"path={path}", "--sink", "file",
                      "--sink-opt", f"path={out}", "--error-sink", "file", "--error-sink-opt",
                      f"path={err}", *extra)
    assert proc.returncode == 0, proc.stderr
    return path, rows(out), errors(err)


def test_empty_objects_and_lists_next_to_a_bad_line_take_no_type(
        tmp_path: Path, run_ingest: Any) -> None:
    """``{}`` and ``[]`` give a field no type (docs/types.md); in pieces split around a bad line
    they made the field text, and every later ``[]`` was rejected (299 good lines, whole
    blocks of them with one id)."""
    lines = [f'{{"id":{i},"f":{"{}" if i == 1 else "[]"}}}' for i in range(1, 301)]
    lines[1] = "not json"
    path, got, rejected = ingest(run_ingest, tmp_path, lines, "--batch-max-bytes", "16KiB")
    ranges = [e["message_id"] for e in rejected if "-" in e["message_id"].rsplit(":", 1)[1]]
    assert ranges == []
    by_line = {int(e["message_id"].rsplit(":", 1)[1]): e["body"] for e in rejected}
    assert by_line == {2: "not json"}
    written = {r["id"] for r in got}
    for n, line in enumerate(lines, 1):
        assert (n in by_line) + (n in written) == 1, n
        if n in by_line:
            assert by_line[n] == line


def test_instant_text_is_never_reformatted(tmp_path: Path, run_ingest: Any) -> None:
    lines = ['{"id":1,"a":1,"t":"2001-06-03T23:16:13Z"}', '{"id":2,"a":"2024-05-01"}']
    _, got, rejected = ingest(run_ingest, tmp_path, lines)
    assert rejected == []
    [row] = [r for r in got if r["id"] == 1]
    assert row["t"] in ("2001-06-03T23:16:13Z",
                        dt.datetime(2001, 6, 3, 23, 16, 13, tzinfo=dt.UTC))


def test_date_text_is_not_stored_in_an_int_column(tmp_path: Path, run_ingest: Any) -> None:
    lines = [f'{{"id":{i},"n":1}}' for i in range(1, 300)] + ['{"id":300,"n":"2024-05-01"}']
    path, got, rejected = ingest(run_ingest, tmp_path, lines, "--batch-max-bytes", "1KiB",
                                 "--workers", "1")  # in line order: "n" is int64 first
    assert [r["n"] for r in got if r["id"] == 300] == []
    assert [e["message_id"] for e in rejected] == [f"{path}:300"]


def test_s3tables_big_int_in_a_double_column_is_rejected_not_nulled(
        tmp_path: Path, run_ingest: Any) -> None:
    lines = ['{"id":1,"A":0.5}', '{"id":2,"A":9007199254740993}']
    path, got, rejected = ingest(run_ingest, tmp_path, lines, "--encoder-opt", "compat=s3tables")
    assert [r for r in got if r["id"] == 2] == []
    assert [e["message_id"] for e in rejected] == [f"{path}:2"]


def test_a_float_stored_as_text_keeps_its_json_spelling(tmp_path: Path, run_ingest: Any) -> None:
    lines = ['{"id":1,"u":"x"}', '{"id":2,"u":2.50}']
    path, got, rejected = ingest(run_ingest, tmp_path, lines)
    stored = [r["u"] for r in got if r["id"] == 2]
    assert stored == ["2.50"] or (stored == [] and [e["message_id"] for e in rejected]
                                  == [f"{path}:2"])
