"""Plugin loading: entry points of throwaway distributions (subprocess) and the registry
in-process with ``extra_plugins``."""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.hookspecs import hookimpl
from parquet_ingestor.options import Option
from parquet_ingestor.plugins import build_registry

GOOD = """
from parquet_ingestor.hookspecs import hookimpl
from parquet_ingestor.options import Option

class Sink:
    def __init__(self, **kw):
        self.kw = kw

@hookimpl
def ingest_register_sinks(register):
    register("{name}", "{module}:Sink", options=[Option("where", required=True)], help="demo")
"""
IMPORT_ERROR = """
import parquet_ingestor_no_such_dependency
"""
HOOK_RAISES = """
from parquet_ingestor.hookspecs import hookimpl

@hookimpl
def ingest_register_sources(register):
    raise RuntimeError("hook exploded on purpose")
"""
TYPO = """
from parquet_ingestor.hookspecs import hookimpl

@hookimpl
def ingest_regster_sources(register):
    register("typo", "x:y")
"""


def good(name: str, module: str) -> str:
    return GOOD.replace("{name}", name).replace("{module}", module)


def file_run_args(tmp_path: Path) -> list[str]:
    events = tmp_path / "in.jsonl"
    events.write_text('{"id": 1}\n{"id": 2}\n')
    return ["--source", "file", "--source-opt", f"path={events}", "--sink", "file",
            "--sink-opt", f"path={tmp_path / 'out'}", "--encoder", "jsonl"]


@pytest.mark.parametrize(("code", "error"), [
    (IMPORT_ERROR, "ModuleNotFoundError: No module named 'parquet_ingestor_no_such_dependency'"),
    (HOOK_RAISES, "RuntimeError: hook exploded on purpose"),
    (TYPO, "PluginError: ingest_regster_sources is not a known hook"),
])
def test_broken_plugin_is_skipped_with_a_warning(
    tmp_path: Path, make_plugin: Callable[..., Path], run_ingest: Any, code: str, error: str,
    read_jsonl: Callable[[Path], list[dict[str, Any]]],
) -> None:
    site = make_plugin(dist="broken-dist", version="6.6.6", entry="broken", code=code)
    listed = run_ingest("plugins", pythonpath=[site])
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr
    warning = [ln for ln in listed.stderr.splitlines() if "broken" in ln]
    assert len(warning) == 1, listed.stderr
    assert "broken-dist" in warning[0] and "6.6.6" in warning[0] and error in warning[0]
    assert "broken  (broken-dist 6.6.6)" in listed.stdout
    assert f"failed to load: {error}" in listed.stdout
    assert "builtins  (parquet-ingestor" in listed.stdout  # the rest still loads

    check = run_ingest("plugins", "--check", pythonpath=[site])
    assert check.returncode == 1

    as_json = json.loads(run_ingest("plugins", "--json", pythonpath=[site]).stdout)
    broken = next(p for p in as_json if p["name"] == "broken")
    assert error in broken["error"] and broken["components"] == []

    run = run_ingest(*file_run_args(tmp_path), pythonpath=[site])
    assert run.returncode == 0, run.stderr
    assert sorted(r["id"] for r in read_jsonl(tmp_path / "out")) == [1, 2]


def test_plugins_check_passes_when_everything_loads(
    make_plugin: Callable[..., Path], run_ingest: Any
) -> None:
    site = make_plugin(dist="fine-dist", entry="fine", code=good("fine", "fine_dist_plugin"))
    proc = run_ingest("plugins", "--check", pythonpath=[site])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "sink fine: demo" in proc.stdout
    assert "where (str, required)" in proc.stdout


def test_same_component_name_from_two_distributions(
    tmp_path: Path, make_plugin: Callable[..., Path], run_ingest: Any
) -> None:
    a = make_plugin(dist="alpha-sinks", entry="alpha", code=good("lake", "alpha_sinks_plugin"))
    b = make_plugin(dist="beta-sinks", entry="beta", code=good("lake", "beta_sinks_plugin"))
    listed = run_ingest("plugins", pythonpath=[a, b])
    assert "sink 'lake' registered by both alpha-sinks and beta-sinks" in listed.stdout
    assert run_ingest("plugins", "--check", pythonpath=[a, b]).returncode == 1

    events = tmp_path / "in.jsonl"
    events.write_text('{"id": 1}\n')
    used = run_ingest("--source", "file", "--source-opt", f"path={events}", "--sink", "lake",
                      "--sink-opt", "where=x", "--encoder", "jsonl", pythonpath=[a, b])
    assert used.returncode == 2
    lines = used.stderr.strip().splitlines()
    assert len(lines) == 1, used.stderr
    assert "alpha-sinks" in lines[0] and "beta-sinks" in lines[0]
    assert "INGEST_DISABLE_PLUGINS" in lines[0]

    # disabling one by entry-point name resolves the clash
    ok = run_ingest("plugins", "--check", pythonpath=[a, b],
                    env={"INGEST_DISABLE_PLUGINS": "beta"})
    assert ok.returncode == 0, ok.stdout
    assert "beta" not in ok.stdout and "sink lake: demo" in ok.stdout


def test_disable_plugins_blocks_one(make_plugin: Callable[..., Path], run_ingest: Any) -> None:
    site = make_plugin(dist="broken-dist", entry="broken", code=IMPORT_ERROR)
    proc = run_ingest("plugins", "--check", pythonpath=[site],
                      env={"INGEST_DISABLE_PLUGINS": " other , broken"})
    assert proc.returncode == 0
    assert "broken" not in proc.stdout + proc.stderr


def test_builtins_register_through_the_entry_point(run_ingest: Any) -> None:
    plugins = json.loads(run_ingest("plugins", "--json").stdout)
    builtins = next(p for p in plugins if p["name"] == "builtins")
    assert builtins["distribution"] == "parquet-ingestor"
    assert builtins["module"] == "parquet_ingestor.builtins"
    names = {(c["kind"], c["name"]) for c in builtins["components"]}
    assert names == {("source", "file"), ("source", "replay"), ("transformer", "json"),
                     ("encoder", "jsonl"),
                     ("sink", "file")}
    gone = run_ingest("plugins", "--json", env={"INGEST_DISABLE_PLUGINS": "builtins"})
    assert "builtins" not in {p["name"] for p in json.loads(gone.stdout)}


# ------------------------------------------------------------------ in-process registry


def plugin(**hooks: Callable[..., None]) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{name: hookimpl(fn) for name, fn in hooks.items()})


class Thing:
    """A demo component."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


def test_registry_with_extra_plugins() -> None:
    def sources(register: Any) -> None:
        register("demo", Thing, options=[Option("n", "int", default=3)])

    registry = build_registry([("mine", plugin(ingest_register_sources=sources))],
                              entry_points_enabled=False)
    spec = registry.get("source", "demo")
    assert spec.help == "A demo component."
    assert spec.distribution == "(local)" and spec.plugin == "mine"
    built = spec.create({"n": "5"})
    assert isinstance(built, Thing) and built.kwargs == {"n": 5}
    assert registry.errors() == []
    with pytest.raises(ConfigError, match=r"unknown sink 'demo' \(available: none installed\)"):
        registry.get("sink", "demo")


def test_registry_lazy_factory_string() -> None:
    def sinks(register: Any) -> None:
        register("lazy", "parquet_ingestor.builtins.file_sink:FileSink")
        register("missing", "no_such_module_xyz:Sink")

    registry = build_registry([("p", plugin(ingest_register_sinks=sinks))],
                              entry_points_enabled=False)
    with pytest.raises(ConfigError, match="cannot import 'no_such_module_xyz:Sink'"):
        registry.get("sink", "missing").create({})


def test_registry_hook_error_is_recorded_not_raised() -> None:
    def sources(register: Any) -> None:
        register("half", Thing)
        raise ValueError("oops")

    registry = build_registry([("bad", plugin(ingest_register_sources=sources))],
                              entry_points_enabled=False)
    assert registry.plugins["bad"].error == "ValueError: oops"
    assert "half" not in registry.names("source")  # nothing half-registered stays
    assert registry.errors() == ["bad ((local) ): ValueError: oops"]


def test_registry_conflict_names_both() -> None:
    def one(register: Any) -> None:
        register("x", Thing)

    def two(register: Any) -> None:
        register("x", Thing)

    registry = build_registry([("a", plugin(ingest_register_sources=one)),
                               ("b", plugin(ingest_register_sources=two))],
                              entry_points_enabled=False)
    with pytest.raises(ConfigError, match="registered twice, by .*plugin a.* and .*plugin b"):
        registry.get("source", "x")


def test_failing_plugin_does_not_remove_another_plugins_component() -> None:
    """Plugin b clashes with a on 'x' and then fails: a's 'x' must stay usable."""

    def one(register: Any) -> None:
        register("x", Thing)

    def two(register: Any) -> None:
        register("x", Thing)

    def boom(register: Any) -> None:
        raise RuntimeError("late failure")

    registry = build_registry(
        [("a", plugin(ingest_register_sources=one)),
         ("b", plugin(ingest_register_sources=two, ingest_register_sinks=boom))],
        entry_points_enabled=False)
    assert registry.plugins["b"].error == "RuntimeError: late failure"
    spec = registry.get("source", "x")
    assert spec.plugin == "a"
    assert not any("registered by both" in line for line in registry.errors())


def test_register_validates_arguments() -> None:
    def bad_name(register: Any) -> None:
        register("", Thing)

    def bad_options(register: Any) -> None:
        register("y", Thing, options=[{"name": "n"}])

    registry = build_registry([("n", plugin(ingest_register_sources=bad_name)),
                               ("o", plugin(ingest_register_sinks=bad_options))],
                              entry_points_enabled=False)
    assert "non-empty string" in (registry.plugins["n"].error or "")
    assert "Option values" in (registry.plugins["o"].error or "")


def test_typo_hook_in_process() -> None:
    def regster(register: Any) -> None:
        register("t", Thing)

    module = types.SimpleNamespace(ingest_regster_sources=regster)
    registry = build_registry([("typo", module)], entry_points_enabled=False)
    assert "ingest_regster_sources is not a known hook" in (registry.plugins["typo"].error or "")
    assert registry.names("source") == []


def test_disable_applies_to_extra_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    def one(register: Any) -> None:
        register("x", Thing)

    monkeypatch.setenv("INGEST_DISABLE_PLUGINS", "a")
    registry = build_registry([("a", plugin(ingest_register_sources=one))],
                              entry_points_enabled=False)
    assert registry.names("source") == []
