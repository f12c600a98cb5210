"""docs/plugins.md stays true: its hook reference matches hookspecs.py, and the tutorial's code,
extracted from the page as written, registers, lists and passes its own contract tests."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from parquet_ingestor import hookspecs
from parquet_ingestor.plugins import build_registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
HEADING = re.compile(r"^### `(ingest_\w+)\(([^)]*)\)`\s*$", re.MULTILINE)
TITLED_BLOCK = re.compile(r'^```\w+ title="([^"]+)"\n(.*?)^```\s*$', re.MULTILINE | re.DOTALL)


def reference_section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("\n## Hook reference")
    end = text.find("\n## ", start + 1)
    return text[start:] if end == -1 else text[start:end]


def hook_specs() -> dict[str, list[str]]:
    return {name: list(inspect.signature(fn).parameters)
            for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if name.startswith("ingest_")}


def test_every_hook_is_documented_with_its_arguments() -> None:
    documented: dict[str, list[str]] = {}
    for name, args in HEADING.findall(reference_section()):
        assert name not in documented, f"{name} documented twice"
        documented[name] = [a.strip() for a in args.split(",") if a.strip()]
    specs = hook_specs()
    assert specs, "no hookspecs found"
    missing = sorted(set(specs) - set(documented))
    assert not missing, f"hooks missing from docs/plugins.md: {missing}"
    unknown = sorted(set(documented) - set(specs))
    assert not unknown, f"docs/plugins.md documents hooks that do not exist: {unknown}"
    for name, args in specs.items():
        assert documented[name] == args, f"{name}: documented {documented[name]}, spec {args}"


def test_the_parser_sees_a_wrong_signature() -> None:
    """The check above must be able to fail: a renamed argument is caught."""
    broken = reference_section().replace("ingest_batch_flushed(pipeline, result)",
                                         "ingest_batch_flushed(pipeline, batch)")
    found = dict(HEADING.findall(broken))
    assert [a.strip() for a in found["ingest_batch_flushed"].split(",")] != \
        hook_specs()["ingest_batch_flushed"]


def extract_tutorial(root: Path) -> dict[str, str]:
    files = dict(TITLED_BLOCK.findall(DOC.read_text(encoding="utf-8")))
    for rel, code in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code, encoding="utf-8")
    (root / "src/parquet_ingestor_spool/__init__.py").touch()
    return files


def test_tutorial_plugin_registers_as_the_page_shows(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    files = extract_tutorial(tmp_path)
    assert {"pyproject.toml", "src/parquet_ingestor_spool/plugin.py",
            "src/parquet_ingestor_spool/source.py", "tests/conftest.py",
            "tests/test_spool.py"} <= set(files)
    project = tomllib.loads(files["pyproject.toml"])["project"]
    entry = project["entry-points"]["parquet_ingestor"]["spool"]
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    plugin = importlib.import_module(entry)
    try:
        registry = build_registry([("spool", plugin)], entry_points_enabled=False)
        assert not registry.errors()
        spec = registry.get("source", "spool")
        page = DOC.read_text(encoding="utf-8")
        assert f"  source spool: {spec.help}" in page  # the `ingest plugins` listing shown
        for option in spec.options:
            assert f"      {option.describe()}" in page
        source = spec.create({"path": str(tmp_path), "poll": "10ms"})
        assert source.receive(10, 0.05) == []
        source.close()
    finally:
        for name in [m for m in sys.modules if m.startswith("parquet_ingestor_spool")]:
            del sys.modules[name]


@pytest.mark.slow
def test_tutorial_tests_pass(tmp_path: Path) -> None:
    extract_tutorial(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(tmp_path / "src"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "7 passed, 1 skipped" in done.stdout


def test_the_page_covers_what_a_plugin_author_needs() -> None:
    from parquet_ingestor.testing import SinkContract, SourceContract

    text = DOC.read_text(encoding="utf-8")
    for needle in ("start(context)", "close()", "ingest --validate", "secret=True",
                   '"secret": true', "--max-deliveries", "Message` carries `deliveries`",
                   "in_flight_messages", "EventLoopThread", "HeldMessages", "plugins --check"):
        assert needle in text, needle
    assert text.count("| `SinkWriter` method |") == 1, "the writer protocol is stated once"
    declared = [name for name, value in vars(SourceContract).items()
                if not name.startswith(("_", "test_")) and not callable(value)]
    assert declared, "SourceContract declares nothing?"
    for name in declared:
        assert f"`{name}`" in text, f"SourceContract.{name} is not documented"
    for name in ("part_size", "stores_metadata", "read_stored"):
        assert hasattr(SinkContract, name) and f"`{name}" in text, name
