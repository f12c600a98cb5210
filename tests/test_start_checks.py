"""Start-up checks of issue #17: what can never work fails at start (and in ``--validate``)
with exit 2 and one line; what a killed run left behind is cleaned up."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest


def _file_args(tmp_path: Path, *extra: str) -> list[str]:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"id": 1}\n{"id": 2}\n')
    return ["--source", "file", "--source-opt", f"path={src}", "--sink", "file",
            "--sink-opt", f"path={tmp_path / 'out'}", "--encoder", "jsonl", *extra]


@pytest.mark.parametrize("validate", [False, True])
@pytest.mark.parametrize(("extra", "named"), [
    (["--key-template", "../{uuid}.{ext}"], "--key-template"),
    (["--key-template", "%Y/./{uuid}.{ext}"], "--key-template"),
    (["--key-template", "%Y/{uuid}/"], "--key-template"),
    (["--retry-jitter", "nan"], "--retry-jitter"),
    (["--retry-jitter", "inf"], "--retry-jitter"),
])
def test_what_can_never_work_exits_2_at_start(
    tmp_path: Path, run_ingest: Any, extra: list[str], named: str, validate: bool,
) -> None:
    args = _file_args(tmp_path, *extra) + (["--validate"] if validate else [])
    proc = run_ingest(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], proc.stderr
    assert not list((tmp_path / "out").rglob("*.jsonl"))


def test_validate_checks_the_file_sink_root_is_writable(tmp_path: Path, run_ingest: Any) -> None:
    root = Path("/sys/kernel")  # a directory nobody (not even root) may create files in
    if not root.is_dir() or os.access(root, os.W_OK) and _can_create(root):
        pytest.skip("no unwritable directory to test with")
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"id": 1}\n')
    proc = run_ingest("--source", "file", "--source-opt", f"path={src}", "--sink", "file",
                      "--sink-opt", f"path={root}", "--validate")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write to" in lines[0], proc.stderr


def _can_create(folder: Path) -> bool:
    try:
        (folder / ".ingest-can-create").touch()
    except OSError:
        return False
    (folder / ".ingest-can-create").unlink()
    return True


def test_stale_temporary_files_of_a_killed_run_are_removed_at_start(
    tmp_path: Path, run_ingest: Any,
) -> None:
    folder = tmp_path / "out" / "2024" / "01"
    folder.mkdir(parents=True)
    stale = folder / ".123-abc.jsonl.0123abcd.tmp"  # the sink's own pattern, a day old
    fresh = folder / ".456-def.jsonl.89abcdef.tmp"  # a live writer's (another process)
    foreign = folder / ".notes.tmp"  # not ours: never touched
    for path in (stale, fresh, foreign):
        path.write_bytes(b"partial")
    day_ago = time.time() - 86400
    os.utime(stale, (day_ago, day_ago))
    os.utime(foreign, (day_ago, day_ago))
    proc = run_ingest(*_file_args(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert not stale.exists()
    assert fresh.exists() and foreign.exists()
    assert "removed 1 stale temporary file(s)" in proc.stderr
    rows = [json.loads(line) for p in (tmp_path / "out").rglob("*.jsonl")
            for line in p.read_bytes().splitlines()]
    assert sorted(r["id"] for r in rows) == [1, 2]
