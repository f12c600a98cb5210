"""Units: lease bookkeeping and extension rules, with a stub client that answers at once."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from parquet_ingestor_sqs.leases import Lease, LeaseTable
from parquet_ingestor_sqs.options import MAX_VISIBILITY
from parquet_ingestor_sqs.source import SqsSource

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/unit"


class StubClient:
    """Records visibility changes; fails the receipt handles listed in ``lost``."""

    def __init__(self) -> None:
        self.visibility: list[tuple[str, int]] = []
        self.lost: set[str] = set()

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        ok, failed = [], []
        for e in Entries:
            if e["ReceiptHandle"] in self.lost:
                failed.append({"Id": e["Id"], "Code": "ReceiptHandleIsInvalid", "Message": "gone",
                               "SenderFault": True})
            else:
                self.visibility.append((e["ReceiptHandle"], e["VisibilityTimeout"]))
                ok.append({"Id": e["Id"]})
        return {"Successful": ok, "Failed": failed}


def leased(source: SqsSource, handles: list[str], received_at: float, deadline: float) -> list[Lease]:
    leases = [Lease(h, f"id-{h}", received_at, deadline) for h in handles]
    assert source._table.reserve(len(leases), 1.0) == len(leases)
    assert source._table.add(leases, len(leases))
    return leases


def test_only_leases_near_their_deadline_are_extended():
    client = StubClient()
    source = SqsSource(URL, visibility_timeout=30, check_queue=False, client=client)
    now = time.monotonic()
    soon = leased(source, ["a", "b"], now - 25, now + 5)
    later = leased(source, ["c"], now, now + 30)
    assert source.extend_due(horizon=10) == 2
    assert client.visibility == [("a", 30), ("b", 30)]
    assert all(lease.deadline > now + 29 for lease in soon)
    assert later[0].deadline == now + 30
    assert source.stats["lease_extensions"] == 2


def test_extension_stops_at_the_12_hour_limit():
    client = StubClient()
    source = SqsSource(URL, visibility_timeout=60, check_queue=False, client=client)
    now = time.monotonic()
    leased(source, ["old"], now - (MAX_VISIBILITY - 30), now + 1)  # 30 s of the 12 h left
    leased(source, ["ancient"], now - MAX_VISIBILITY, now + 1)  # nothing left
    source.extend_due(horizon=20)
    [(handle, seconds)] = client.visibility
    assert handle == "old" and 20 <= seconds <= 25  # capped, 5 s safety margin
    client.visibility.clear()
    source.extend_due(horizon=3600)
    assert client.visibility == []  # neither is extended again...
    assert source.in_flight == 2  # ...but both stay in flight until settled


def test_a_lost_lease_is_not_extended_again():
    client = StubClient()
    client.lost = {"gone"}
    source = SqsSource(URL, visibility_timeout=30, check_queue=False, client=client)
    now = time.monotonic()
    leased(source, ["gone", "fine"], now, now + 1)
    assert source.extend_due(horizon=10) == 1
    assert source.stats["leases_lost"] == 1
    client.visibility.clear()
    for lease in source._table.due(now + 3600, 100):
        lease.deadline = now  # force "due" again
    source.extend_due(horizon=10)
    assert [h for h, _ in client.visibility] == ["fine"]


def test_settled_leases_are_never_extended():
    client = StubClient()
    source = SqsSource(URL, visibility_timeout=30, check_queue=False, client=client)
    now = time.monotonic()
    leases = leased(source, ["a", "b"], now, now + 1)
    source._table.settle(leases[:1])
    source.extend_due(horizon=10)
    assert client.visibility == [("b", 30)]


def test_reservations_bound_in_flight():
    table = LeaseTable(limit=15)
    assert table.reserve(10, 0.1) == 10
    assert table.reserve(10, 0.1) == 5
    assert table.reserve(10, 0.05) == 0  # full: times out
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(table.reserve(10, 5.0)))
    waiter.start()
    table.add([Lease(str(i), str(i), 0.0, 0.0) for i in range(3)], 10)  # got 3 of 10
    waiter.join(5.0)
    assert got == [7]  # woken: 15 - 3 leased - 5 still reserved
    assert table.in_flight == 15 and len(table) == 3


def test_close_settles_everything_and_refuses_new_leases():
    table = LeaseTable(limit=10)
    table.reserve(2, 0.1)
    leases = [Lease("a", "a", 0.0, 0.0), Lease("b", "b", 0.0, 0.0)]
    table.add(leases, 2)
    assert table.close() == leases
    assert all(lease.settled for lease in leases)
    assert table.reserve(1, 0.1) == 0
    assert table.add([Lease("c", "c", 0.0, 0.0)], 0) is False
    assert len(table) == 0


@pytest.mark.parametrize("delay, expected", [(None, 7), (0, 0), (2.2, 3), (10**6, MAX_VISIBILITY)])
def test_nack_delay(delay, expected):
    client = StubClient()
    source = SqsSource(URL, retry_delay="7s", check_queue=False, client=client)
    now = time.monotonic()
    [lease] = leased(source, ["x"], now, now + 30)
    from parquet_ingestor.message import Message

    source.nack([Message("x", b"", {}, lease)], delay)
    assert client.visibility == [("x", expected)]
    assert source.in_flight == 0


def test_byte_limit_pauses_reservations_until_bytes_are_settled() -> None:
    table = LeaseTable(limit=1000, byte_limit=1000)
    leases = []
    for i in range(3):
        lease = Lease(f"rh{i}", f"m{i}", 0.0, 30.0)
        lease.size = 400
        leases.append(lease)
    assert table.reserve(3, timeout=0) == 3
    table.add(leases, 3)
    assert table.bytes == 1200
    assert table.reserve(10, timeout=0.05) == 0  # 1200 >= 1000 bytes in flight: wait
    table.settle(leases[:1])
    assert table.bytes == 800
    assert table.reserve(10, timeout=0) == 10  # below the byte limit again
    table.settle(leases)  # settling twice does not count twice
    assert table.bytes == 0
