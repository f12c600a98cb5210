"""``ingest new-plugin``: the template renders for every kind, and a rendered plugin installs in
a fresh venv, is listed by ``ingest plugins``, passes its own tests and runs in a pipeline."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.plugins import KINDS
from parquet_ingestor.scaffold import PluginNames, render_plugin

REPO = Path(__file__).resolve().parents[1]
CLI = "from parquet_ingestor.cli import main; main()"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("INGEST_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(extra)
    return env


def ingest(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env=clean_env())


@pytest.mark.parametrize("kind", KINDS)
def test_renders_a_complete_distribution(kind: str, tmp_path: Path) -> None:
    target = render_plugin("my-queue", kind, tmp_path)
    assert target == tmp_path / "parquet-ingestor-my-queue"
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == sorted([
        "README.md", "pyproject.toml", "tests/conftest.py", f"tests/test_{kind}.py",
        "src/parquet_ingestor_my_queue/__init__.py", "src/parquet_ingestor_my_queue/py.typed",
        "src/parquet_ingestor_my_queue/plugin.py", f"src/parquet_ingestor_my_queue/{kind}.py",
    ])
    for path in target.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "{{" not in text, path
            if path.suffix == ".py":
                ast.parse(text, str(path))
    project = tomllib.loads((target / "pyproject.toml").read_text())["project"]
    assert project["name"] == "parquet-ingestor-my-queue"
    assert project["entry-points"]["parquet_ingestor"] == {
        "my-queue": "parquet_ingestor_my_queue.plugin"}
    plugin = (target / "src/parquet_ingestor_my_queue/plugin.py").read_text()
    assert f"def ingest_register_{kind}s(" in plugin
    cls = PluginNames("my-queue", kind).class_name  # type: ignore[arg-type]
    assert f'"parquet_ingestor_my_queue.{kind}:{cls}"' in plugin
    assert "pytest_plugins = [\"parquet_ingestor.testing\"]" in (
        target / "tests/conftest.py").read_text()
    assert "TODO" in (target / f"src/parquet_ingestor_my_queue/{kind}.py").read_text()
    # plain import mode: the tests import their conftest helpers with `from conftest import`
    assert "import-mode" not in (target / "pyproject.toml").read_text()


def test_source_template_is_the_redelivering_queue_shape(tmp_path: Path) -> None:
    target = render_plugin("nats", "source", tmp_path)
    source = (target / "src/parquet_ingestor_nats/source.py").read_text()
    for call in ("def fetch(", "def delete(", "def extend(", "def give_back(",
                 "HeldMessages(", "def start(self, context"):
        assert call in source, call
    tests = (target / "tests/test_source.py").read_text()
    assert "from conftest import publish" in tests
    assert "lease_length = " in tests and "reopen_resumes" not in tests


def test_names_and_existing_targets_are_checked(tmp_path: Path) -> None:
    assert PluginNames("redis-streams", "source").class_name == "RedisStreamsSource"
    assert PluginNames("s3x", "sink").module == "parquet_ingestor_s3x"
    for bad in ("Kafka", "-x", "9lives", "a b", "a--b", "", "x/../y"):
        with pytest.raises(ConfigError, match="plugin name"):
            render_plugin(bad, "source", tmp_path)
    with pytest.raises(ConfigError, match="--kind"):
        render_plugin("ok", "database", tmp_path)
    render_plugin("ok", "sink", tmp_path)
    with pytest.raises(ConfigError, match="already exists"):
        render_plugin("ok", "source", tmp_path)


def test_cli_new_plugin(tmp_path: Path) -> None:
    done = ingest("new-plugin", "kafka", "--kind", "transformer", "--dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "KafkaTransformer.parse()" in done.stdout
    assert (tmp_path / "parquet-ingestor-kafka/src/parquet_ingestor_kafka/transformer.py").is_file()
    again = ingest("new-plugin", "kafka", "--dir", str(tmp_path))
    assert again.returncode == 2 and again.stderr.count("\n") == 1
    assert "already exists" in again.stderr
    bad = ingest("new-plugin", "Kafka!", "--dir", str(tmp_path))
    assert bad.returncode == 2 and "plugin name" in bad.stderr


# ------------------------------------------------------------------ the stranger's path


def _uv(args: list[str], venv: Path) -> None:
    """Run uv against ``venv``, offline from uv's cache first, then online."""
    env = clean_env(VIRTUAL_ENV=str(venv))
    for offline in (["--offline"], []):
        done = subprocess.run(["uv", *args[:2], *offline, *args[2:]], capture_output=True,
                              text=True, timeout=120, env=env)
        if done.returncode == 0:
            return
    raise AssertionError(f"uv {' '.join(args)} failed:\n{done.stderr[-2000:]}")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_rendered_plugins_install_list_pass_their_tests_and_run(tmp_path: Path) -> None:
    if shutil.which("uv") is None:
        pytest.skip("uv is not installed")
    plugins = tmp_path / "plugins"
    for kind in KINDS:
        done = ingest("new-plugin", f"demo-{kind}", "--kind", kind, "--dir", str(plugins))
        assert done.returncode == 0, done.stderr
    rendered = sorted(plugins.iterdir())
    venv = tmp_path / "venv"
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True,
                   timeout=60, env=clean_env(), capture_output=True)
    editable = [arg for path in [REPO / "core", *rendered] for arg in ("-e", str(path))]
    _uv(["pip", "install", "-q", *editable, "pytest"], venv)
    bin_dir = venv / "bin"

    listed = subprocess.run([bin_dir / "ingest", "plugins", "--json", "--check"],
                            capture_output=True, text=True, timeout=60, env=clean_env())
    assert listed.returncode == 0, listed.stderr
    by_name = {p["name"]: p for p in json.loads(listed.stdout)}
    for kind in KINDS:
        info = by_name[f"demo-{kind}"]
        assert info["distribution"] == f"parquet-ingestor-demo-{kind}" and info["error"] is None
        assert [(c["kind"], c["name"]) for c in info["components"]] == [(kind, f"demo-{kind}")]

    for path in rendered:
        tests = subprocess.run([bin_dir / "pytest", "-q", "-p", "no:cacheprovider"], cwd=path,
                               capture_output=True, text=True, timeout=120, env=clean_env())
        assert tests.returncode == 0, f"{path.name}:\n{tests.stdout[-3000:]}"
        assert " passed" in tests.stdout and "skipped" not in tests.stdout

    # one pipeline made only of the four new components; the source's starter is a spool
    # directory queue (one file per message, deleted once written)
    spool = tmp_path / "spool"
    spool.mkdir()
    lines = [f"n={i} level={'info' if i % 3 else 'warn'} user=u{i % 7}" for i in range(300)]
    for i, line in enumerate(lines[:150] + ["not logfmt"] + lines[150:]):
        (spool / f"{i:04d}.msg").write_text(line)
    run = subprocess.run(
        [bin_dir / "ingest", "--source", "demo-source", "--source-opt", f"path={spool}",
         "--transformer", "demo-transformer", "--encoder", "demo-encoder",
         "--encoder-opt", "sort_keys=true", "--sink", "demo-sink",
         "--sink-opt", f"path={tmp_path / 'out'}", "--error-sink", "file",
         "--error-sink-opt", f"path={tmp_path / 'errors'}", "--batch-max-records", "100",
         "--batch-max-age", "1s", "--exit-when-idle", "1s"],
        capture_output=True, text=True, timeout=60, env=clean_env())
    assert run.returncode == 0, run.stderr
    assert list(spool.iterdir()) == []  # every message acked after its write
    written = sorted((p for p in (tmp_path / "out").rglob("*")
                      if p.is_file() and not p.name.startswith(".")), key=str)
    assert written and all(p.suffix == ".jsonl" for p in written)
    for path in written:  # the sink stored content type and metadata beside each file
        meta = json.loads(path.with_name(f".{path.name}.meta.json").read_text())
        assert meta["content_type"] and meta["metadata"]["ingest-records"]
    rows = [json.loads(line) for p in written for line in p.read_text().splitlines()]
    assert sorted(rows, key=lambda r: r["n"]) == [
        {"level": "info" if i % 3 else "warn", "n": i, "user": f"u{i % 7}"} for i in range(300)]
    assert all(list(r) == sorted(r) for r in rows)  # the encoder option reached the encoder
    errors = [json.loads(line) for p in (tmp_path / "errors").rglob("*.jsonl")
              for line in p.read_text().splitlines()]
    assert [(e["body"], e["reason"].split(":")[0]) for e in errors] == [
        ("not logfmt", "ValueError")]
