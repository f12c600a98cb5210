"""A newcomer's first hour, read from the real ``ingest`` output.

With the core alone (a site folder holding only parquet-ingestor, click and pluggy, run with
``python -S`` so the workspace's plugins are invisible): a missing bundled component is a hint
naming its distribution and extra, ``ingest plugins`` lists what is missing, ``ingest demo`` says
what it needs, and a run without Parquet says once that it writes JSON lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib.metadata import distribution
from pathlib import Path

import pytest
from parquet_ingestor.plugins import BUNDLED, build_registry

ROOT = Path(__file__).resolve().parents[1]
CLI = "from parquet_ingestor.cli import main; main()"


def _site_with_core_only(folder: Path) -> Path:
    """A folder holding parquet_ingestor, click and pluggy (code and metadata), nothing else."""
    import click
    import parquet_ingestor
    import pluggy

    folder.mkdir()
    for module, dist in ((parquet_ingestor, "parquet-ingestor"), (click, "click"),
                         (pluggy, "pluggy")):
        package = Path(module.__file__ or "").parent
        (folder / package.name).symlink_to(package)
        info = Path(str(distribution(dist)._path))  # type: ignore[attr-defined]
        (folder / info.name).symlink_to(info)
    return folder


@pytest.fixture(scope="module")
def core_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _site_with_core_only(tmp_path_factory.mktemp("core-only") / "site")


def ingest_core_only(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_", "PYTHON"))}
    env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-S", "-c", CLI, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_core_only_site_really_has_no_plugin(core_only: Path, tmp_path: Path) -> None:
    proc = ingest_core_only(core_only, tmp_path, "plugins")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("builtins  (parquet-ingestor")
    for bundled in BUNDLED:
        assert f"({bundled.distribution} " not in proc.stdout  # no "NAME  (DIST VERSION)" header


FLAGS = {"source": "--source", "sink": "--sink", "encoder": "--encoder"}


@pytest.mark.parametrize(("kind", "name", "bundled"), [
    (kind, name, bundled) for bundled in BUNDLED for kind, name in bundled.components])
def test_a_missing_bundled_component_says_what_to_install(
    core_only: Path, tmp_path: Path, kind: str, name: str, bundled: object,
) -> None:
    chosen = {"source": "file", "sink": "file", kind: name}
    args = ["--source", chosen["source"], "--source-opt", "path=in.jsonl",
            "--sink", chosen["sink"], "--sink-opt", "path=out"]
    if kind == "encoder":
        args += ["--encoder", name]
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n')
    proc = ingest_core_only(core_only, tmp_path, *args)
    assert proc.returncode == 2
    available = {"source": "file", "sink": "file", "encoder": "jsonl"}[kind]
    dist, extra = bundled.distribution, bundled.extra  # type: ignore[attr-defined]
    assert proc.stderr == (
        f"ingest: error: unknown {kind} '{name}' (available: {available}): it comes with "
        f"{dist} (pip install 'parquet-ingestor[{extra}]')\n")


def test_ingest_plugins_lists_the_missing_bundled_plugins(core_only: Path, tmp_path: Path) -> None:
    proc = ingest_core_only(core_only, tmp_path, "plugins")
    assert proc.returncode == 0, proc.stderr
    tail = proc.stdout.split("Bundled with parquet-ingestor but not available here:\n", 1)[1]
    assert tail.splitlines() == [
        "  parquet  (encoder parquet): it comes with parquet-ingestor-parquet "
        "(pip install 'parquet-ingestor[parquet]')",
        "  s3  (sink s3): it comes with parquet-ingestor-s3 (pip install 'parquet-ingestor[s3]')",
        "  sqs  (source sqs): it comes with parquet-ingestor-sqs "
        "(pip install 'parquet-ingestor[sqs]')",
    ]


def test_ingest_plugins_with_everything_installed_lists_nothing_missing(run_ingest) -> None:  # type: ignore[no-untyped-def]
    proc = run_ingest("plugins")
    assert proc.returncode == 0, proc.stderr
    assert "not available here" not in proc.stdout


def test_a_disabled_bundled_plugin_says_it_is_disabled(run_ingest) -> None:  # type: ignore[no-untyped-def]
    proc = run_ingest("--source", "sqs", "--sink", "file", "--sink-opt", "path=out",
                      env={"INGEST_DISABLE_PLUGINS": "sqs"})
    assert proc.returncode == 2
    assert proc.stderr.endswith(
        "unknown source 'sqs' (available: file, redis-streams): "
        "the sqs plugin is disabled by INGEST_DISABLE_PLUGINS\n")


def test_ingest_demo_with_the_core_alone_says_what_it_needs(core_only: Path, tmp_path: Path) -> None:
    proc = ingest_core_only(core_only, tmp_path, "demo")
    assert proc.returncode == 2
    assert proc.stderr == (
        "ingest: error: the demo needs the sqs, s3 and parquet plugins and moto's server; "
        "missing here: the sqs source, the parquet encoder, the s3 sink, moto's server "
        "(pip install 'parquet-ingestor[demo]')\n")
    help_proc = ingest_core_only(core_only, tmp_path, "--help")
    assert "  demo " in help_proc.stdout


def test_a_run_without_parquet_warns_once_that_it_writes_jsonl(
    core_only: Path, tmp_path: Path,
) -> None:
    (tmp_path / "in.jsonl").write_text("".join(f'{{"n": {i}}}\n' for i in range(50)))
    proc = ingest_core_only(core_only, tmp_path, "--source", "file", "--source-opt",
                            "path=in.jsonl", "--sink", "file", "--sink-opt", "path=out",
                            "--batch-max-records", "10")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, proc.stderr
    assert warnings[0].endswith(
        "WARNING no Parquet encoder here: writing JSON lines (.jsonl) files; for Parquet: it "
        "comes with parquet-ingestor-parquet (pip install 'parquet-ingestor[parquet]')")
    written = sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert len(written) == 5 and all(name.endswith(".jsonl") for name in written)


def test_no_warning_when_jsonl_is_chosen(core_only: Path, tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"n": 1}\n')
    proc = ingest_core_only(core_only, tmp_path, "--source", "file", "--source-opt",
                            "path=in.jsonl", "--sink", "file", "--sink-opt", "path=out",
                            "--encoder", "jsonl")
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr


def test_the_bundled_table_matches_the_plugins_and_the_core_extras() -> None:
    """BUNDLED is the one declaration; the plugins' registrations and the extras agree with it."""
    registry = build_registry()
    extras = tomllib.loads((ROOT / "core" / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for bundled in BUNDLED:
        assert registry.plugins[bundled.plugin].distribution == bundled.distribution
        registered = {(c.kind, c.name) for c in registry.plugins[bundled.plugin].components}
        assert registered == set(bundled.components)
        assert extras[bundled.extra] == [bundled.distribution]
        assert bundled.distribution in extras["all"] and bundled.distribution in extras["demo"]
