"""Config files, merging, and CLI > INGEST_* env > config file > defaults precedence."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from parquet_ingestor.config import (
    PIPELINE_OPTIONS,
    ComponentChoice,
    RunConfig,
    build_pipeline,
    load_toml,
    merge,
    settings_from,
)
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.options import parse_options
from parquet_ingestor.plugins import build_registry


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_load_toml(tmp_path: Path) -> None:
    cfg = load_toml(write(tmp_path / "c.toml", """
source = "file"
[sink]
name = "file"
path = "out"
fsync = false
[pipeline]
batch_max_bytes = "64MiB"
batch_max_age = "5m"
workers = 2
manifest = true
"""))
    assert cfg.source == ComponentChoice("file", {})
    assert cfg.sink == ComponentChoice("file", {"path": "out", "fsync": False})
    values = cfg.values()
    assert values["batch_max_bytes"] == 64 * 1024**2
    assert values["batch_max_age"] == 300.0
    assert values["workers"] == 2 and values["manifest"] is True
    settings = settings_from(values)
    assert settings.batch.max_bytes == 64 * 1024**2 and settings.workers == 2


def test_defaults() -> None:
    values = RunConfig().values()
    assert values["batch_max_bytes"] == 5 * 1024**2
    assert values["batch_max_age"] == 300.0
    assert values["workers"] == 4
    assert values["exit_when_idle"] is None
    settings = settings_from(values)
    assert settings.batch.max_records == 0
    assert settings.partition_by == "processing"


def test_every_pipeline_option_has_a_valid_default() -> None:
    assert set(parse_options(PIPELINE_OPTIONS, {}, "pipeline")) == {o.name for o in PIPELINE_OPTIONS}


@pytest.mark.parametrize(("text", "match"), [
    ("[sorce]\nname='file'\n", r"unknown section \[sorce\]"),
    ("[pipeline]\nbatch_max_byte = 1\n", "no option 'batch_max_byte'"),
    ("[pipeline]\nworkers = 0\n", "--workers: 0 is below the minimum 1"),
    ("[pipeline]\nbatch_max_age = 'forever'\n", "--batch-max-age"),
    ("[source]\npath = 'x'\n", r"\[source\] needs a name"),
    ("pipeline = 3\n", r"\[pipeline\] must be a table"),
    ("[source\n", "not valid TOML"),
])
def test_config_file_errors(tmp_path: Path, text: str, match: str) -> None:
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError, match=match):
        load_toml(path).values()


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_toml(str(tmp_path / "nope.toml"))


def test_unknown_component_key_in_config(tmp_path: Path) -> None:
    cfg = load_toml(write(tmp_path / "c.toml", f"""
[source]
name = "file"
path = "{tmp_path}"
colour = "red"
[sink]
name = "file"
path = "{tmp_path / 'out'}"
"""))
    with pytest.raises(ConfigError, match="source 'file' has no option 'colour'"):
        build_pipeline(cfg, build_registry())


def test_merge_precedence() -> None:
    base = RunConfig(source=ComponentChoice("file", {"path": "a", "max_deliveries": 2}),
                     sink=ComponentChoice("file", {"path": "out"}),
                     pipeline={"workers": 2, "batch_max_age": "1m"})
    over = RunConfig(source=ComponentChoice("", {"path": "b"}), pipeline={"workers": 8})
    merged = merge(base, over)
    assert merged.source == ComponentChoice("file", {"path": "b", "max_deliveries": 2})
    assert merged.sink == ComponentChoice("file", {"path": "out"})
    assert merged.pipeline == {"workers": 8, "batch_max_age": "1m"}
    # naming another component drops the lower layer's options (they belong to the old one)
    other = merge(base, RunConfig(source=ComponentChoice("sqs", {"queue_url": "q"})))
    assert other.source == ComponentChoice("sqs", {"queue_url": "q"})


def test_options_without_a_component_anywhere() -> None:
    from parquet_ingestor.config import build_pipeline
    from parquet_ingestor.plugins import get_registry

    merged = merge(RunConfig(source=ComponentChoice("file", {"path": "-"}),
                             sink=ComponentChoice("file", {"path": "out"})),
                   RunConfig(error_sink=ComponentChoice("", {"path": "x"})))
    with pytest.raises(ConfigError, match="--error-sink-opt given without --error-sink"):
        build_pipeline(merged, get_registry())


def test_encoder_options_alone_apply_to_the_default_encoder() -> None:
    merged = merge(RunConfig(), RunConfig(encoder=ComponentChoice("", {"compression": "gzip"})))
    assert merged.encoder == ComponentChoice("", {"compression": "gzip"})


def _run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", "from parquet_ingestor.cli import main; main()", *args],
        env=full, cwd=cwd, capture_output=True, text=True, timeout=60)


def _top_dirs(out: Path) -> set[str]:
    return {p.name for p in out.iterdir()} if out.exists() else set()


@pytest.mark.parametrize(("layers", "winner"), [
    ({"file"}, "file"),
    ({"file", "env"}, "env"),
    ({"file", "env", "cli"}, "cli"),
    ({"file", "cli"}, "cli"),
    ({"env"}, "env"),
    (set(), "default"),
])
def test_precedence_cli_env_file_default(tmp_path: Path, layers: set[str], winner: str) -> None:
    """Each layer sets --key-template to a different first path segment; the winner shows."""
    events = tmp_path / "events.jsonl"
    events.write_text('{"id": 1}\n{"id": 2}\n')
    out = tmp_path / "out"
    config = write(tmp_path / "c.toml", f"""
[source]
name = "file"
path = "{events}"
[sink]
name = "file"
path = "{out}"
[encoder]
name = "jsonl"
[pipeline]
{'key_template = "file/{uuid}.{ext}"' if "file" in layers else ""}
workers = 1
""")
    env = {"INGEST_KEY_TEMPLATE": "env/{uuid}.{ext}"} if "env" in layers else {}
    args = ["--config", config]
    if "cli" in layers:
        args += ["--key-template", "cli/{uuid}.{ext}"]
    proc = _run_cli(args, env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    dirs = _top_dirs(out)
    if winner == "default":
        assert len(dirs) == 1 and re.fullmatch(r"20\d\d", dirs.pop())  # %Y/%m/%d/%H/...
    else:
        assert dirs == {winner}


def test_env_names_components_and_options(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"id": 1}\n')
    out = tmp_path / "out"
    proc = _run_cli([], {"INGEST_SOURCE": "file", "INGEST_SOURCE_OPT": f"path={events}",
                         "INGEST_SINK": "file", "INGEST_SINK_OPT": f"path={out}",
                         "INGEST_ENCODER": "jsonl"}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(list(out.rglob("*.jsonl"))) == 1


def test_env_bad_value_names_the_flag(tmp_path: Path) -> None:
    proc = _run_cli(["--source", "file", "--source-opt", f"path={tmp_path}", "--sink", "file",
                     "--sink-opt", f"path={tmp_path / 'o'}"],
                    {"INGEST_BATCH_MAX_BYTES": "huge"}, tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--batch-max-bytes" in proc.stderr


def test_retry_policies_come_from_options() -> None:
    from parquet_ingestor.config import settings_from

    config = RunConfig(pipeline={"write_attempts": "7", "write_base_delay": "2s",
                                 "write_max_delay": "1m", "ack_attempts": 3,
                                 "ack_base_delay": "50ms", "retry_jitter": "0"})
    settings = settings_from(config.values())
    assert (settings.write_retry.attempts, settings.write_retry.base_delay,
            settings.write_retry.max_delay, settings.write_retry.jitter) == (7, 2.0, 60.0, 0.0)
    assert (settings.ack_retry.attempts, settings.ack_retry.base_delay) == (3, 0.05)
    with pytest.raises(ConfigError, match="--retry-jitter"):
        RunConfig(pipeline={"retry_jitter": "2"}).values()
