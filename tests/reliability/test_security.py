"""Security: record values cannot steer writes out of the sink's prefix or root; credentials
never show in anything the process prints; configuration is data, never code."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import CLI, env_for, make_events, read_s3, read_tree, run_ingest

REPO = Path(__file__).resolve().parents[2]
HOSTILE = ["../", "..", ".", "/etc/passwd", "%2e%2e", "..%2f..%2f", "a\x00b", "\x00",
           "..\\..\\windows", "x" * 10_000, "~root", "$(id)", "", " ", "./.", "\u202e.."]
KEY_TEMPLATE = "{field:country}/{uuid}.{ext}"


def _hostile_input(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """JSON lines whose "country" is a path-traversal attempt (plus ordinary ones)."""
    events = [json.loads(e) for e in make_events(len(HOSTILE) * 3, seed=41)]
    for i, event in enumerate(events):
        event["country"] = HOSTILE[i % len(HOSTILE)] if i % 3 else "US"
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    return path, events


def _safe_key(key: str, prefix: str) -> None:
    assert key.startswith(prefix), key
    segments = key[len(prefix):].split("/")
    assert all(s not in ("", ".", "..") for s in segments), key
    assert "\x00" not in key and "\\" not in key, key
    assert all(len(s) <= 255 for s in segments), key


@pytest.mark.aws
@pytest.mark.timeout(60)
def test_partition_values_never_escape_the_s3_prefix(
    aws: tuple[Any, Any], aws_env: dict[str, str], unique_name: str, logdir: Path,
    tmp_path: Path,
) -> None:
    _sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    path, events = _hostile_input(tmp_path)
    run = run_ingest(["--source", "file", "--source-opt", f"path={path}", "--sink", "s3",
                      "--sink-opt", f"bucket={unique_name}", "--sink-opt", "prefix=out/",
                      "--key-template", KEY_TEMPLATE], env_for(aws_env), logdir, timeout=50)
    assert run.code == 0, run.stderr[-3000:]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=unique_name).get("Contents", [])]
    assert keys
    for key in keys:
        _safe_key(key, "out/")
    out = read_s3(s3, unique_name, "out/")
    assert sorted(out.ids) == sorted(e["id"] for e in events)
    assert sorted(r["country"] for r in out.rows) == sorted(e["country"] for e in events)


@pytest.mark.timeout(60)
def test_partition_values_never_escape_the_file_sink_root(
    aws_env: dict[str, str], logdir: Path, tmp_path: Path
) -> None:
    path, events = _hostile_input(tmp_path)
    jail = tmp_path / "jail"
    root = jail / "root"
    root.mkdir(parents=True)
    (jail / "canary").write_text("untouched")
    run = run_ingest(["--source", "file", "--source-opt", f"path={path}", "--sink", "file",
                      "--sink-opt", f"path={root}", "--key-template", KEY_TEMPLATE],
                     env_for(aws_env), logdir, timeout=50)
    assert run.code == 0, run.stderr[-3000:]
    outside = [p for p in jail.rglob("*") if root not in p.parents and p != root]
    assert [p.name for p in outside] == ["canary"]
    assert (jail / "canary").read_text() == "untouched"
    for file in root.rglob("*"):
        assert Path(os.path.realpath(file)).is_relative_to(root)
        if file.is_file():
            _safe_key(file.relative_to(root).as_posix(), "")
    out = read_tree(root)
    assert sorted(out.ids) == sorted(e["id"] for e in events)


@pytest.mark.timeout(60)
def test_file_sink_does_not_follow_a_symlink_planted_in_its_root(
    aws_env: dict[str, str], logdir: Path, tmp_path: Path
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "evil").symlink_to(outside, target_is_directory=True)
    events = [json.loads(e) for e in make_events(30, seed=42)]
    for i, event in enumerate(events):
        event["country"] = "evil" if i % 2 else "US"
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    run = run_ingest(["--source", "file", "--source-opt", f"path={path}",
                      "--max-deliveries", "2", "--sink", "file",
                      "--sink-opt", f"path={root}", "--key-template", KEY_TEMPLATE,
                      "--write-attempts", "2", "--write-max-delay", "0.1s"],
                     env_for(aws_env), logdir, timeout=50)
    assert list(outside.iterdir()) == []
    # Nothing may be written there, so the lines are not lost silently either: the run fails.
    assert run.code == 1, run.stderr[-3000:]
    assert "outside the sink root" in run.stderr
    assert "could not be written" in run.stderr


# ------------------------------------------------------------------------------- credentials

SECRETS = {
    "AWS_ACCESS_KEY_ID": "ASIAREL1ABILITYKEY42",
    "AWS_SECRET_ACCESS_KEY": "rel/SecretKey+ForTests0nly/abcdefghijklmnop",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEReliabilitySessionToken/+abc123==",
}


def _printed(args: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-c", CLI, *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    return f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.aws
@pytest.mark.slow
@pytest.mark.timeout(150)
def test_credentials_never_appear_in_output(
    aws: tuple[Any, Any], aws_env: dict[str, str], unique_name: str, tmp_path: Path
) -> None:
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="not json")
    sqs.send_message(QueueUrl=url, MessageBody=make_events(1, seed=43)[0].decode())
    env = env_for(aws_env, **SECRETS)
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(make_events(20, seed=44)) + b"\n")
    debug = ["--log-level", "DEBUG"]
    runs = {
        "plugins": ["plugins"],
        "plugins --json": ["plugins", "--json"],
        "help": ["--help"],
        "missing bucket (start check)": [
            "--source", "file", "--source-opt", f"path={source}", "--sink", "s3",
            "--sink-opt", "bucket=no-such-bucket-rel", *debug],
        "missing bucket (writes fail)": [
            "--source", "file", "--source-opt", f"path={source}", "--sink", "s3",
            "--sink-opt", "bucket=no-such-bucket-rel", "--sink-opt", "check_bucket=false",
            "--write-attempts", "2", "--write-max-delay", "0.1s", *debug],
        "missing queue": ["--source", "sqs", "--source-opt", f"queue_url={url}-missing",
                          "--sink", "s3", "--sink-opt", f"bucket={unique_name}", *debug],
        "sqs to s3, json logs": [
            "--source", "sqs", "--source-opt", f"queue_url={url}", "--source-opt",
            "wait_time=1s", "--sink", "s3", "--sink-opt", f"bucket={unique_name}",
            "--error-sink", "s3", "--error-sink-opt", f"bucket={unique_name}",
            "--error-sink-opt", "prefix=errors/", "--exit-when-idle", "2s",
            "--log-format", "json", *debug],
    }
    outputs = {name: _printed(args, env, tmp_path) for name, args in runs.items()}
    assert "exit 0" in outputs["sqs to s3, json logs"], outputs["sqs to s3, json logs"][-2000:]
    assert "exit 2" in outputs["missing bucket (start check)"]
    assert "exit 1" in outputs["missing bucket (writes fail)"]
    assert "DEBUG" in outputs["sqs to s3, json logs"]
    for name, text in outputs.items():
        for var, secret in SECRETS.items():
            assert secret not in text, f"{var} printed by `{name}`"
            for piece in (secret[:16], secret[-16:]):
                assert piece not in text, f"part of {var} printed by `{name}`"


@pytest.mark.timeout(60)
def test_credentials_in_an_option_value_are_masked_in_errors(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    env = env_for(aws_env, **SECRETS)
    for flag, value in (("--source-opt", "path=/nonexistent/{}"),
                        ("--sink-opt", "endpoint_url=http://user:{}@127.0.0.1:1")):
        secret = SECRETS["AWS_SECRET_ACCESS_KEY"]
        sink = ["--sink", "s3", "--sink-opt", "bucket=b"] if flag == "--sink-opt" else [
            "--sink", "file", "--sink-opt", f"path={tmp_path / 'out'}"]
        source = tmp_path / "in.jsonl"
        source.write_text("{}\n")
        args = (["--source", "file", "--source-opt", f"path={source}", *sink,
                 flag, value.format(secret)] if flag == "--sink-opt" else
                ["--source", "file", flag, value.format(secret), *sink])
        text = _printed([*args, "--log-level", "DEBUG"], env, tmp_path)
        assert secret not in text, text


# ------------------------------------------------------------------------------- config is data

SHIPPED = [REPO / "core" / "src", *sorted((REPO / "plugins").glob("*/src"))]
BANNED_CALLS = {"eval", "exec", "compile", "__import__", "execfile"}
BANNED_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "yaml", "jsonpickle",
                  "cloudpickle", "subprocess"}
# The one dynamic import a configuration can cause: "module:attribute" through load_object.
IMPORT_MODULE_ALLOWED = {("core/src/parquet_ingestor/plugins.py", "load_object"),
                         # the lazy public API: a module of its own fixed table (_HOMES)
                         ("core/src/parquet_ingestor/__init__.py", "__getattr__")}
LOAD_OBJECT_CALLERS = {"core/src/parquet_ingestor/plugins.py",
                       "plugins/parquet/src/parquet_ingestor_parquet/schema.py"}


def _functions(tree: ast.AST) -> dict[ast.AST, str]:
    owner: dict[ast.AST, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for child in ast.walk(node):
                owner.setdefault(child, node.name)
    return owner


def test_shipped_code_has_no_eval_exec_pickle_or_stray_dynamic_import() -> None:
    files = [p for root in SHIPPED for p in root.rglob("*.py")]
    assert len(files) > 20
    problems: list[str] = []
    load_object_callers: set[str] = set()
    for path in files:
        rel = path.relative_to(REPO).as_posix()
        tree = ast.parse(path.read_text(), rel)
        owner = _functions(tree)
        for node in ast.walk(tree):
            where = f"{rel}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                    node.module or ""]
                for name in names:
                    if name.split(".")[0] in BANNED_MODULES:
                        problems.append(f"{where}: imports {name}")
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else (
                func.attr if isinstance(func, ast.Attribute) else "")
            if isinstance(func, ast.Name) and name in BANNED_CALLS:
                problems.append(f"{where}: calls {name}()")
            if name in ("import_module", "load", "load_all", "unsafe_load") and isinstance(
                    func, ast.Attribute) and isinstance(func.value, ast.Name) and \
                    func.value.id in ("importlib", "yaml", "pickle", "marshal") and \
                    (rel, owner.get(node, "")) not in IMPORT_MODULE_ALLOWED:
                problems.append(f"{where}: {func.value.id}.{name}()")
            if name in ("system", "popen", "spawnl", "execv", "execvp") and isinstance(
                    func, ast.Attribute) and isinstance(func.value, ast.Name) and \
                    func.value.id == "os":
                problems.append(f"{where}: os.{name}()")
            if name == "load_object":
                load_object_callers.add(rel)
    assert problems == []
    assert load_object_callers <= LOAD_OBJECT_CALLERS, load_object_callers


MARKER_MODULE = """
import dataclasses, os, pathlib
pathlib.Path(os.environ["REL_MARKER"]).write_text("imported")

@dataclasses.dataclass
class Event:
    id: str
"""


@pytest.mark.timeout(90)
def test_only_module_colon_class_options_import_code(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "rel_marker_mod.py").write_text(MARKER_MODULE)
    marker = tmp_path / "marker"
    env = env_for(aws_env, PYTHONPATH=str(site), REL_MARKER=str(marker))
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(make_events(5, seed=45)) + b"\n")
    base = ["--source", "file", "--source-opt", f"path={source}",
            "--sink", "file", "--sink-opt", f"path={tmp_path / 'out'}"]
    ref = "rel_marker_mod:Event"
    config = tmp_path / "ingest.toml"
    config.write_text(f'[source]\nname = "{ref}"\n[sink]\nname = "file"\npath = "{ref}"\n'
                      f'[pipeline]\nkey_template = "{ref}/{{uuid}}.{{ext}}"\n')
    not_code = {
        "component name": ["--source", ref, "--sink", "file", "--sink-opt", "path=x"],
        "sink name": [*base[:4], "--sink", ref],
        "transformer schema": [*base, "--transformer-opt", f"schema={ref}"],
        "plain option value": [*base[:4], "--sink", "file", "--sink-opt",
                               f"path={tmp_path / 'sinks' / ref}"],
        "config file": ["--config", str(config)],
    }
    for name, args in not_code.items():
        text = _printed(args, env, tmp_path)
        assert not marker.exists(), f"{name}: {ref} was imported\n{text}"
        assert "Traceback" not in text, text
    # The documented exception: the parquet encoder's schema=module:Class imports the module.
    text = _printed([*base, "--encoder", "parquet", "--encoder-opt", f"schema={ref}"],
                    env, tmp_path)
    assert text.startswith("exit 0"), text
    assert marker.read_text() == "imported"
    text = _printed([*base, "--encoder", "parquet", "--encoder-opt",
                     "schema=rel_marker_mod:pathlib"], env, tmp_path)
    assert text.startswith("exit 2") and "not a dataclass" in text, text
