"""Secret options stay secret (``ingest plugins``, ``--json``, error messages), and
``ingest plugins --check`` reports a component option named like a pipeline option."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor import ConfigError, Option, hookimpl
from parquet_ingestor.cli import describe_plugins
from parquet_ingestor.config import PIPELINE_OPTIONS
from parquet_ingestor.plugins import build_registry, option_collisions

SECRET = "s3cr3t-Passw0rd"


class Vault:
    def __init__(self, password: str | None = None, workers: int = 1,
                 port: int | None = None) -> None:
        if password and password.startswith("s3"):
            raise ConfigError(f"source 'vault': login refused for password {password}")


class Plugin:
    @hookimpl
    def ingest_register_sources(self, register: Any) -> None:
        register("vault", Vault, help="a source with a password", options=[
            Option("password", default="default-pw", secret=True, help="login password"),
            Option("workers", "int", default=1, help="collides with --workers"),
            Option("port", "int", min=1, secret=True, help="secret number"),
        ])


def registry() -> Any:
    return build_registry([("vault", Plugin())], entry_points_enabled=False)


def test_listing_marks_secrets_and_never_shows_their_defaults() -> None:
    spec = registry().get("source", "vault")
    lines = [o.describe() for o in spec.options]
    assert lines[0] == "password (str, secret): login password"
    assert "default-pw" not in " ".join(lines)
    (info,) = [p for p in describe_plugins(registry()) if p["name"] == "vault"]
    options = {o["name"]: o for o in info["components"][0]["options"]}
    assert options["password"]["secret"] is True and options["password"]["default"] is None
    assert options["workers"]["secret"] is False and options["workers"]["default"] == 1
    assert "default-pw" not in json.dumps(info)


def test_secret_values_never_reach_error_messages() -> None:
    spec = registry().get("source", "vault")
    with pytest.raises(ConfigError) as raised:
        spec.create({"password": SECRET})
    assert SECRET not in str(raised.value) and "****" in str(raised.value)
    with pytest.raises(ConfigError) as raised:
        spec.create({"port": "0"})
    assert "'0'" not in str(raised.value) and "below the minimum" in str(raised.value)
    with pytest.raises(ConfigError) as raised:
        spec.create({"port": "p4ss"})
    assert "p4ss" not in str(raised.value) and "option 'port'" in str(raised.value)


def test_check_reports_an_option_named_like_a_pipeline_option() -> None:
    lines = option_collisions(registry(), [o.name for o in PIPELINE_OPTIONS])
    assert len(lines) == 1 and "option 'workers'" in lines[0] and "--workers" in lines[0]
    clean = build_registry([], entry_points_enabled=False)
    assert option_collisions(clean, [o.name for o in PIPELINE_OPTIONS]) == []


def check(tmp_path: Path, option: str) -> subprocess.CompletedProcess[str]:
    """``ingest plugins --check`` with one local plugin whose sink has ``option``."""
    (tmp_path / "collide_plugin.py").write_text(
        "from parquet_ingestor import Option, hookimpl\n"
        "@hookimpl\n"
        "def ingest_register_sinks(register):\n"
        f"    register('collide', 'x:y', options=[Option({option!r}, 'size')])\n")
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
            "import collide_plugin, parquet_ingestor.plugins as p\n"
            "p._default = p.build_registry([('collide', collide_plugin)])\n"
            "from parquet_ingestor.cli import main; main(['plugins', '--check'])\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)


def test_cli_check_exits_1_naming_the_collision(tmp_path: Path) -> None:
    done = check(tmp_path, "batch_max_bytes")
    assert done.returncode == 1, done.stderr
    assert "sink 'collide' (plugin collide)" in done.stderr
    assert "--batch-max-bytes" in done.stderr
    ok = check(tmp_path, "part_bytes")
    assert ok.returncode == 0, ok.stderr
