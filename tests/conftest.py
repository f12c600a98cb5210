"""Helpers for the core tests, as fixtures: run ``ingest`` in a subprocess, build throwaway
plugin distributions, read jsonl output back."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CLI = "from parquet_ingestor.cli import main; main()"
RunIngest = Callable[..., subprocess.CompletedProcess[str]]


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without INGEST_* variables that could leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.update(extra)
    return env


@pytest.fixture
def run_ingest(tmp_path: Path) -> RunIngest:
    """``run_ingest(*args, env={...}, input="...", pythonpath=[...])`` -> CompletedProcess."""

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None,
            pythonpath: list[Path] | None = None, timeout: float = 120) -> Any:
        full = clean_env(**(env or {}))
        if pythonpath:
            full["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
        return subprocess.run([sys.executable, "-c", CLI, *args], env=full, cwd=tmp_path,
                              input=input, capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture
def make_plugin(tmp_path: Path) -> Callable[..., Path]:
    """Install a throwaway plugin distribution in a fresh folder; returns the folder.

    ``make_plugin(dist="demo-plugin", version="1.2.3", entry="demo", code="...")`` writes
    ``<module>.py`` and ``<dist>-<version>.dist-info/{METADATA,entry_points.txt}``.
    """
    counter = iter(range(1000))

    def make(*, dist: str, version: str = "1.0.0", entry: str, code: str,
             module: str | None = None) -> Path:
        root = tmp_path / f"site{next(counter)}"
        root.mkdir()
        module = module or dist.replace("-", "_") + "_plugin"
        (root / f"{module}.py").write_text(textwrap.dedent(code))
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[parquet_ingestor]\n{entry} = {module}\n")
        return root

    return make


def read_jsonl_tree(root: Path) -> list[dict[str, Any]]:
    """Every record of every committed ``*.jsonl``/``*.jsonl.gz`` file under ``root``."""
    rows: list[dict[str, Any]] = []
    for path in sorted(root.rglob("*")):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.name.endswith(".jsonl.gz"):
            data = gzip.decompress(path.read_bytes())
        elif path.name.endswith(".jsonl"):
            data = path.read_bytes()
        else:
            continue
        rows.extend(json.loads(line) for line in data.splitlines() if line.strip())
    return rows


@pytest.fixture
def read_jsonl() -> Callable[[Path], list[dict[str, Any]]]:
    return read_jsonl_tree


@pytest.fixture
def events_file(tmp_path: Path) -> Callable[[int], tuple[Path, list[str]]]:
    """``events_file(n)`` -> (path of n realistic events, their ids in order)."""
    from parquet_ingestor.sample import iter_events

    def make(n: int, name: str = "events.jsonl") -> tuple[Path, list[str]]:
        path = tmp_path / name
        ids: list[str] = []
        with path.open("wb") as handle:
            for event in iter_events(n):
                line = event.rstrip(b"\n")
                ids.append(json.loads(line)["id"])
                handle.write(line + b"\n")
        return path, ids

    return make
