"""Fixtures shared by the core tests and the bundled plugins' tests.

``moto_endpoint`` runs moto in server mode on loopback: boto3 talks to it over real HTTP, and so
can an ``ingest`` subprocess (``AWS_ENDPOINT_URL``). Tests use unique queue and bucket names
instead of resetting the server.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE0000",
    "AWS_SECRET_ACCESS_KEY": "fake-secret-key-for-tests-only-000000000",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
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
