"""Fixtures shared by the core tests and the bundled plugins' tests, and how the suite is
spread over pytest-xdist workers (``-n 6 --dist loadgroup`` in pyproject.toml).

``moto_endpoint`` runs moto in server mode on loopback: boto3 talks to it over real HTTP, and so
can an ``ingest`` subprocess (``AWS_ENDPOINT_URL``). Tests use unique queue and bucket names
instead of resetting the server.

Under xdist every worker is its own process with its own session: a session-scoped fixture runs
once per worker (one moto server, one redis-server each, on ports the OS picks), and
``tmp_path``/``tmp_path_factory`` are per worker. A module- or class-scoped fixture would run once
per worker that gets a test of its module, so such modules are kept on one worker (see
``pytest_itemcollected``).

Rules for new tests and fixtures, as any test may run beside any other:
- no fixed port (bind port 0, or pick one and retry if the server does not come up), no fixed
  path (``tmp_path``/``tmp_path_factory``), nothing written into the checkout;
- names in the shared moto/redis server unique per test (``unique_name``, ``stream``);
- waits on conditions with deadlines sized for a loaded machine; a lease or visibility timeout
  that is not the point of the test is long, and an idle exit outlasts any lease it may wait on;
- tests that take more than a few seconds are marked ``slow`` (they are started first);
  tests that must not run at the same time as each other (one group runs on one worker, one
  test after another), or that share an expensive fixture across modules, take
  ``@pytest.mark.xdist_group("name")``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE0000",
    "AWS_SECRET_ACCESS_KEY": "fake-secret-key-for-tests-only-000000000",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def make_moto_receive_atomic() -> None:
    """Make moto's ReceiveMessage atomic, as SQS's is.

    moto's threaded server can hand one message to two concurrent ReceiveMessage calls (the
    visibility check and the mark-as-received are not under a lock), which real SQS never does;
    tests of duplicates would then measure the emulator. The long poll stays outside the lock.
    """
    import threading
    import time

    from moto.sqs.models import SQSBackend

    original = SQSBackend.receive_message
    if getattr(original, "_atomic", False):
        return
    lock = threading.Lock()

    def receive_message(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                        message_attribute_names=None):  # type: ignore[no-untyped-def]
        deadline = time.time() + (wait_seconds_timeout or 0)
        while True:
            with lock:
                result = original(self, queue_name, count, 0, visibility_timeout,
                                  message_attribute_names)
            if result or time.time() >= deadline:
                return result
            time.sleep(0.05)

    receive_message._atomic = True  # type: ignore[attr-defined]
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto server on loopback, with fake credentials in the environment."""
    pytest.importorskip("moto")
    from moto.server import ThreadedMotoServer

    make_moto_receive_atomic()

    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    os.environ.pop("AWS_PROFILE", None)
    # port 0: the OS picks a free port when the server binds (no race with other workers)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def unique_name() -> str:
    """A fresh lowercase name for a bucket or queue (moto state is shared per session)."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def aws_env(moto_endpoint: str) -> dict[str, str]:
    """Environment for an ``ingest`` subprocess that talks to the moto server."""
    env = dict(os.environ)
    env.update(FAKE_CREDENTIALS)
    env["AWS_ENDPOINT_URL"] = moto_endpoint
    return env


class CompetingRuns:
    """Two ``ingest`` processes consuming one SQS queue at once (competing consumers): both
    are started, the queue is filled only once both serve /metrics (filled first, it could be
    taken whole by the one that started sooner), then both run until idle."""

    def __init__(self, env: dict[str, str], moto_endpoint: str) -> None:
        self.env = env
        self.sqs = __import__("boto3").client("sqs", endpoint_url=moto_endpoint)

    @staticmethod
    def bodies(ids: list[str], per_message: int = 20) -> list[str]:
        """The events ``{"id", "n"}`` packed ``per_message`` JSON lines to a message."""
        return ["\n".join(json.dumps({"id": i, "n": k})
                          for k, i in enumerate(ids[j:j + per_message]))
                for j in range(0, len(ids), per_message)]

    def run(self, args: list[str], queue_url: str, bodies: list[str], start_within: float,
            timeout: float) -> list[str]:
        """Run two ``ingest ARGS`` (JSON logs) over ``bodies``; each must exit 0. Returns
        their stderr."""
        from parquet_ingestor.testing import free_port

        ports = [free_port() for _ in range(2)]
        procs = [subprocess.Popen(
            [sys.executable, "-c", "from parquet_ingestor.cli import main; main()", *args,
             "--log-format", "json", "--metrics-port", str(port), "--metrics-host",
             "127.0.0.1"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True) for port in ports]
        try:
            deadline = time.monotonic() + start_within
            while not all(_serves_metrics(p, port) for p, port in zip(procs, ports, strict=True)):
                assert time.monotonic() < deadline, f"the consumers did not start in {start_within} s"
                time.sleep(0.1)
            for j in range(0, len(bodies), 10):
                self.sqs.send_message_batch(QueueUrl=queue_url, Entries=[
                    {"Id": str(k), "MessageBody": b} for k, b in enumerate(bodies[j:j + 10])])
            outputs = [p.communicate(timeout=timeout) for p in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        for proc, (_, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err[-3000:]
        return [err for _, err in outputs]


def _serves_metrics(proc: subprocess.Popen[str], port: int) -> bool:
    """True once the process serves /metrics (its pipeline is being started)."""
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5):
            return True
    except OSError:
        return False


@pytest.fixture
def competing_runs(aws_env: dict[str, str], moto_endpoint: str) -> CompetingRuns:
    """Two ``ingest`` processes on one SQS queue: :class:`CompetingRuns`."""
    return CompetingRuns(aws_env, moto_endpoint)


#: fixture scopes whose value is shared by the tests of one module (or class)
_SHARED_SCOPES = {"module", "class", "package"}


def pytest_itemcollected(item: pytest.Item) -> None:
    """A test that uses a module-, class- or package-scoped fixture goes in an ``xdist_group``
    named after its module, so that fixture (a fresh copy of the checkout with its own venv, a
    dataset written by ``ingest`` runs) is built once, not once per worker. (Marked here, as
    each item is collected: xdist reads the marks in its own collection_modifyitems hook.)"""
    if item.get_closest_marker("xdist_group"):
        return
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info is not None else []
    if any(d[-1].scope in _SHARED_SCOPES for d in defs if d):
        item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


def _group_name(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    if mark is None:
        return None
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first, then the moto ones, then the rest (stable within each, and a module
    with a shared fixture kept together): long tests start early instead of ending the run
    alone on one worker while the others wait, and a module-scoped fixture is set up once.

    On an xdist worker with ``--dist loadgroup``, a grouped test's id gets the ``@group`` suffix
    the scheduler groups by. xdist 3.8 sets it in ``item._nodeid``, which pytest 9.2 no longer
    reads (the id lives in ``item._id``), so without this every group would be ignored.
    """
    if hasattr(config, "workerinput") and config.getvalue("loadgroup"):
        for item in items:
            name = _group_name(item)
            if name is not None and "@" not in item.nodeid:
                tagged = f"{item.nodeid}@{name}"
                if hasattr(item, "_id"):
                    from _pytest.nodeid import coerce_node_id

                    item._id = coerce_node_id(tagged)
                else:
                    item._nodeid = tagged

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("slow"):
            return 0
        return 1 if item.get_closest_marker("aws") else 2

    first: dict[str, int] = {}  # a grouped module ranks as its most urgent test
    for item in items:
        name = _group_name(item)
        if name is not None:
            first[name] = min(first.get(name, 2), rank(item))

    def key(item: pytest.Item) -> tuple[int, str]:
        name = _group_name(item)
        return (rank(item), "") if name is None else (first[name], name)

    items.sort(key=key)
