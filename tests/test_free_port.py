"""``parquet_ingestor.testing.free_port``: ports that concurrent tests cannot both be handed."""

from __future__ import annotations

import socket

from parquet_ingestor import testing
from parquet_ingestor.testing import free_port


def test_ports_are_distinct_bindable_and_outside_the_ephemeral_range() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    low = testing._ephemeral_low()
    assert all(port < low for port in ports)  # where bind(0) never lands
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))


def test_each_xdist_worker_has_its_own_block(monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    first = {free_port() for _ in range(20)}
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    fourth = {free_port() for _ in range(20)}
    assert not first & fourth
    assert all(20000 + 3 * 400 <= port < 20000 + 4 * 400 for port in fourth)


def test_a_taken_port_is_skipped(monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw5")
    monkeypatch.setattr(testing, "_next_port", iter(range(10)))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 20000 + 5 * 400))
        taken.listen()
        assert free_port() == 20000 + 5 * 400 + 1
