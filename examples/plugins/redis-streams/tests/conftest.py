"""A real redis-server for the tests, on a free loopback port, started once per session.

The test kit's fixtures are imported rather than enabled with ``pytest_plugins``: this conftest
is not at the root of the repository these tests also run from, and pytest only honours
``pytest_plugins`` in a root conftest.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from parquet_ingestor.testing import plugin_registry, run_pipeline_fixture  # noqa: F401


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a throwaway redis-server (no persistence); skips when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    workdir: Path = tmp_path_factory.mktemp("redis")  # per xdist worker, as is the server
    for _attempt in range(5):
        # the port is free when picked; another worker's process may take it before redis
        # binds it, and then this server exits at once: pick another
        port = _free_port()
        server = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 30
        while server.poll() is None:
            try:
                if int(client.info("server")["process_id"]) != server.pid:  # not ours
                    server.kill()
                    server.wait()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    server.kill()
                    raise RuntimeError("redis-server did not start in 30 s") from None
                time.sleep(0.05)
        client.close()
        if server.poll() is None:
            break
    else:
        raise RuntimeError("redis-server did not start (no free port?)")
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(redis_url)
    yield r
    r.close()


@pytest.fixture
def stream() -> str:
    """A fresh stream key per test (the server is shared by the session)."""
    return f"events-{uuid.uuid4().hex[:10]}"



CLI = "from parquet_ingestor.cli import main; main()"


@pytest.fixture
def ingest_command() -> Callable[..., list[str]]:
    """``ingest_command(*args)``: argv running ``ingest`` with this interpreter (the plugin is
    found through its entry point, as for any user)."""
    return lambda *args: [sys.executable, "-c", CLI, *args]


def _read_output(root: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(root.rglob("*.jsonl")):
        if not path.name.startswith("."):  # a killed process may leave a hidden temp file
            rows.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return rows


@pytest.fixture
def read_output() -> Callable[[Path], list[dict[str, Any]]]:
    """``read_output(root)``: every row of the committed JSON-lines files under ``root``."""
    return _read_output
