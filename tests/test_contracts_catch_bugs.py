"""The conformance suites can fail: each catches each broken behaviour of a plugin.

A correct in-memory queue source (leases that lapse, like SQS visibility) and a correct
in-memory object-store sink (staged parts, like S3 multipart) pass every test of their suite;
then one bug at a time is put into a subclass, and the suite test that must catch it fails.
The first ten are the bugs found by writing NATS and Azure plugins from the docs alone.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor import BaseSink, BaseSource, Message
from parquet_ingestor.interfaces import Sink, Source
from parquet_ingestor.redelivery import HeldMessages
from parquet_ingestor.testing import SinkContract, SourceContract, StoredObject

LEASE = 3.0  # renewed every 0.75 s: a 2 s stall of a loaded machine still passes

# ------------------------------------------------------------------ an in-memory queue server


@dataclass
class Entry:
    body: bytes
    visible_at: float = 0.0
    deliveries: int = 0


class Broker:
    """A queue server: received entries are invisible for ``lease`` seconds unless deleted."""

    def __init__(self, lease: float) -> None:
        self.lease = lease
        self.entries: dict[str, Entry] = {}
        self.cond = threading.Condition()

    def publish(self, bodies: Sequence[bytes]) -> None:
        with self.cond:
            for body in bodies:
                self.entries[f"e{len(self.entries)}"] = Entry(body)
            self.cond.notify_all()

    def take(self, most: int, timeout: float) -> list[tuple[str, Entry]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                now = time.monotonic()
                ready = [(k, e) for k, e in self.entries.items() if e.visible_at <= now][:most]
                if ready or now >= deadline:
                    break
                soonest = min((e.visible_at for e in self.entries.values()), default=deadline)
                self.cond.wait(max(0.005, min(deadline, soonest) - now))
            for _, entry in ready:
                entry.visible_at = now + self.lease
                entry.deliveries += 1
            return ready

    def delete(self, ids: Sequence[str]) -> None:
        with self.cond:
            for i in ids:
                self.entries.pop(i, None)

    def set_visibility(self, ids: Sequence[str], seconds: float) -> None:
        with self.cond:
            for i in ids:
                if i in self.entries:
                    self.entries[i].visible_at = time.monotonic() + seconds
            self.cond.notify_all()


class QueueSource(BaseSource):
    """A correct redelivering source over :class:`Broker`, built on HeldMessages."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.held = HeldMessages(self._renew, renew_every=broker.lease / 4)
        self.closes = 0

    def start(self, context: Any) -> None:
        self.held.start()

    def _renew(self, messages: Sequence[Message]) -> None:
        self.broker.set_visibility([m.handle for m in messages], self.broker.lease)

    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        out = [Message(f"id-{key}", entry.body, {}, key, entry.deliveries)
               for key, entry in self.broker.take(max_messages, timeout)]
        self.held.lease(out, count=False)
        return out

    def ack(self, messages: Sequence[Message]) -> None:
        self.broker.delete([m.handle for m in messages])
        self.held.settle(messages)

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        self.held.forget(messages)
        self.broker.set_visibility([m.handle for m in messages], delay or 0.0)

    def close(self) -> None:
        self.closes += 1
        released = self.held.release()
        self.broker.set_visibility([m.handle for m in released], 0.0)


# ------------------------------------------------------------------ one bug each


class AckNeverReachesServer(QueueSource):
    def ack(self, messages: Sequence[Message]) -> None:
        self.held.settle(messages)


class CloseGivesNothingBack(QueueSource):
    def close(self) -> None:
        self.held.release()


class NackDoesNothing(QueueSource):
    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        self.held.forget(messages)


class NackIgnoresDelay(QueueSource):
    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        super().nack(messages, 0)


class NoLeaseRenewal(QueueSource):
    def start(self, context: Any) -> None:
        pass


class DuplicateDelivery(QueueSource):
    """Delivers its first message once more with the next call (a lease it lost track of)."""

    first: Message | None = None

    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        if self.first is None:
            out = list(super().receive(max_messages, timeout))
            self.first = out[0] if out else None
            return out
        return [*super().receive(max_messages - 1, timeout), self.first]


class LosesMessages(QueueSource):
    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        out = super().receive(max_messages, timeout)
        self.ack([m for m in out if m.handle == "e3"])
        return [m for m in out if m.handle != "e3"]


class IgnoresMaxMessages(QueueSource):
    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        return super().receive(max_messages + 5, timeout)


class IdsNotUnique(QueueSource):
    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        out = super().receive(max_messages, timeout)
        for m in out:
            m.id = "same"
        return out


class CorruptsBodies(QueueSource):
    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        out = super().receive(max_messages, timeout)
        for m in out:
            m.body = m.body.strip(b"}")
        return out


class NackGivesBackHalf(QueueSource):
    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        super().nack(messages[: len(messages) // 2], delay)
        self.held.forget(messages)


class CloseReleasesAfterDelay(QueueSource):
    """Releases at close with the lease length as delay: "eventually", not within the bound."""

    def close(self) -> None:
        released = self.held.release()
        self.broker.set_visibility([m.handle for m in released], self.broker.lease)


class CloseTwiceFails(QueueSource):
    def close(self) -> None:
        if self.closes:
            raise RuntimeError("already closed")
        super().close()


class DeliveryCountStuck(QueueSource):
    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        out = super().receive(max_messages, timeout)
        for m in out:
            m.deliveries = 1
        return out


class RenewalStopsAfterOneRound(QueueSource):
    def _renew(self, messages: Sequence[Message]) -> None:
        if not getattr(self, "renewed", False):
            self.renewed = True
            super()._renew(messages)


# ------------------------------------------------------------------ the suite against them


class QueueContract(SourceContract):
    source_class: type[QueueSource] = QueueSource
    lease_length = LEASE
    release_within = 0.6
    nack_delay = 1.0
    receive_timeout = 3.0
    counts_deliveries = True

    def make_source(self, bodies: list[bytes]) -> Callable[[], Source]:
        broker = Broker(self.lease_length)
        broker.publish(bodies)
        return lambda: self.source_class(broker)


class TestCorrectQueueSourcePasses(QueueContract):
    """The correct source passes every test (so the failures below are the bugs')."""


SOURCE_TESTS = [name for name in dir(SourceContract) if name.startswith("test_")]
SOURCE_BUGS: dict[type[QueueSource], str] = {
    AckNeverReachesServer: "test_acked_messages_stay_gone_past_the_lease",
    CloseGivesNothingBack: "test_close_gives_messages_back_within_the_bound",
    NackDoesNothing: "test_nack_now_gives_messages_back_within_the_bound",
    NackIgnoresDelay: "test_nack_delay_is_honoured",
    NoLeaseRenewal: "test_leases_are_renewed_while_held",
    DuplicateDelivery: "test_delivers_every_message_once",
    LosesMessages: "test_delivers_every_message_once",
    IgnoresMaxMessages: "test_delivers_every_message_once",
    IdsNotUnique: "test_delivers_every_message_once",
    CorruptsBodies: "test_delivers_every_message_once",
    NackGivesBackHalf: "test_nack_now_gives_messages_back_within_the_bound",
    CloseReleasesAfterDelay: "test_close_gives_messages_back_within_the_bound",
    CloseTwiceFails: "test_close_is_idempotent",
    DeliveryCountStuck: "test_nack_now_gives_messages_back_within_the_bound",
    RenewalStopsAfterOneRound: "test_leases_are_renewed_while_held",
}


def run_test(contract: type, name: str) -> None:
    """Run one test of a contract the way pytest would (no fixtures needed here)."""
    getattr(contract(), name)()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("broken", list(SOURCE_BUGS), ids=lambda c: c.__name__)
def test_source_contract_catches(broken: type[QueueSource]) -> None:
    contract = type(f"Test{broken.__name__}", (QueueContract,), {"source_class": broken})
    with pytest.raises((AssertionError, RuntimeError)):
        run_test(contract, SOURCE_BUGS[broken])


def test_every_source_test_is_needed_or_listed() -> None:
    """Each catching test named above exists in the suite."""
    assert set(SOURCE_BUGS.values()) <= set(SOURCE_TESTS)


def test_a_lease_shorter_than_three_release_bounds_is_refused() -> None:
    class Misdeclared(QueueContract):
        lease_length = 1.0
        release_within = 0.5

    with pytest.raises(AssertionError, match="at most a third"):
        run_test(Misdeclared, "test_close_gives_messages_back_within_the_bound")


# ------------------------------------------------------------------ an in-memory object store


@dataclass
class Stored:
    data: bytes
    content_type: str
    metadata: dict[str, str] = field(default_factory=dict)


class Store:
    """An object store with staged uploads in parts (like S3 multipart)."""

    def __init__(self) -> None:
        self.objects: dict[str, Stored] = {}
        self.staged: dict[str, list[bytes]] = {}
        self.lock = threading.Lock()


PART = 64 * 1024


class StoreSink(BaseSink):
    """A correct sink: parts of PART bytes are staged as they fill, published at commit."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> StoreWriter:
        return StoreWriter(self, key, content_type, dict(metadata))

    def url(self, key: str) -> str:
        return f"mem://bucket/{key}"


class StoreWriter:
    def __init__(self, sink: StoreSink, key: str, content_type: str,
                 metadata: dict[str, str]) -> None:
        self.sink, self.key, self.content_type, self.metadata = sink, key, content_type, metadata
        self.upload = f"{key}#{id(self)}"
        self.buffer = bytearray()
        self.parts: list[bytes] = []
        with sink.store.lock:
            sink.store.staged[self.upload] = self.parts

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.buffer += data
        while len(self.buffer) >= PART:
            self.parts.append(bytes(self.buffer[:PART]))
            del self.buffer[:PART]
        return len(data)

    def publish(self) -> bytes:
        return b"".join(self.parts) + bytes(self.buffer)

    def commit(self) -> None:
        with self.sink.store.lock:
            self.sink.store.objects[self.key] = Stored(self.publish(), self.content_type,
                                                       self.metadata)
            self.sink.store.staged.pop(self.upload, None)

    def abort(self) -> None:
        with self.sink.store.lock:
            self.sink.store.staged.pop(self.upload, None)
        self.parts.clear()
        self.buffer.clear()


# ------------------------------------------------------------------ one bug each


class VisibleBeforeCommitWriter(StoreWriter):
    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = super().write(data)
        with self.sink.store.lock:
            self.sink.store.objects[self.key] = Stored(self.publish(), self.content_type)
        return n


class AbortCommitsWriter(StoreWriter):
    def abort(self) -> None:
        self.commit()


class DropsStagedPartsWriter(StoreWriter):
    def publish(self) -> bytes:
        return b"".join(self.parts[1:]) + bytes(self.buffer)


class RepeatsAPartWriter(StoreWriter):
    def publish(self) -> bytes:
        return b"".join(self.parts[:1] + self.parts[:-1]) + bytes(self.buffer) if \
            len(self.parts) > 1 else super().publish()


class IgnoresContentTypeWriter(StoreWriter):
    def commit(self) -> None:
        self.content_type = "application/octet-stream"
        super().commit()


class DropsMetadataWriter(StoreWriter):
    def commit(self) -> None:
        self.metadata = {}
        super().commit()


class AbortLeavesALockWriter(StoreWriter):
    """Abort forgets to drop the key's lock, so the key cannot be written again."""

    locked: set[str] = set()

    def __init__(self, sink: StoreSink, key: str, content_type: str,
                 metadata: dict[str, str]) -> None:
        if key in self.locked:
            raise OSError(f"{key} is locked by an unfinished upload")
        super().__init__(sink, key, content_type, metadata)
        self.locked.add(key)

    def commit(self) -> None:
        super().commit()
        self.locked.discard(self.key)


class SharedBufferWriter(StoreWriter):
    """All writers of the sink share one buffer (a class attribute by mistake)."""

    shared = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.shared += data
        time.sleep(0)
        return len(data)

    def publish(self) -> bytes:
        out = bytes(self.shared)
        self.shared.clear()
        return out


class AbortSecondTimeFailsWriter(StoreWriter):
    def abort(self) -> None:
        if getattr(self, "aborted", False):
            raise RuntimeError("abort twice")
        self.aborted = True
        super().abort()


class SinkCloseTwiceFails(StoreSink):
    def close(self) -> None:
        if getattr(self, "closed", False):
            raise RuntimeError("closed twice")
        self.closed = True


class StoreContract(SinkContract):
    writer_class: type[StoreWriter] = StoreWriter
    sink_class: type[StoreSink] = StoreSink
    part_size = PART

    def make_sink(self) -> Sink:
        self.store = Store()
        writer_class = self.writer_class

        class Configured(self.sink_class):  # type: ignore[name-defined,misc]
            def open(self, key: str, content_type: str,
                     metadata: Mapping[str, str]) -> StoreWriter:
                return writer_class(self, key, content_type, dict(metadata))

        return Configured(self.store)  # type: ignore[no-any-return]

    def read_stored(self, sink: Sink, key: str) -> StoredObject | None:
        found = self.store.objects.get(key)
        if found is None:
            return None
        return StoredObject(found.data, found.content_type, found.metadata)


class TestCorrectStoreSinkPasses(StoreContract):
    """The correct sink passes every test (so the failures below are the bugs')."""


SINK_BUGS: dict[type, str] = {
    VisibleBeforeCommitWriter: "test_commit_makes_bytes_visible",
    AbortCommitsWriter: "test_abort_leaves_nothing",
    DropsStagedPartsWriter: "test_multi_part_file_round_trips",
    IgnoresContentTypeWriter: "test_content_type_and_metadata_are_stored",
    DropsMetadataWriter: "test_content_type_and_metadata_are_stored",
    RepeatsAPartWriter: "test_multi_part_file_round_trips",
    AbortLeavesALockWriter: "test_key_can_be_written_again_after_an_abort",
    SharedBufferWriter: "test_concurrent_writers",
    AbortSecondTimeFailsWriter: "test_abort_leaves_nothing",
    SinkCloseTwiceFails: "test_close_is_idempotent",
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("broken", list(SINK_BUGS), ids=lambda c: c.__name__)
def test_sink_contract_catches(broken: type) -> None:
    attr = "sink_class" if issubclass(broken, StoreSink) else "writer_class"
    contract = type(f"Test{broken.__name__}", (StoreContract,), {attr: broken})
    with pytest.raises((AssertionError, RuntimeError, OSError)):
        run_test(contract, SINK_BUGS[broken])


def test_a_sink_test_must_say_how_to_read_metadata_back() -> None:
    class Undeclared(SinkContract):
        def make_sink(self) -> Sink:
            return StoreSink(Store())

    with pytest.raises(NotImplementedError, match="read_stored"):
        run_test(Undeclared, "test_content_type_and_metadata_are_stored")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_suites_fail_under_pytest_as_an_author_runs_them(tmp_path: Path) -> None:
    """Through pytest itself: the correct plugins pass every test, two broken ones fail
    exactly the tests that catch them, and nothing is skipped."""
    (tmp_path / "test_broken.py").write_text(f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("catch_bugs", {str(Path(__file__))!r})
bugs = importlib.util.module_from_spec(spec)
sys.modules["catch_bugs"] = bugs
spec.loader.exec_module(bugs)

class TestGood(bugs.QueueContract):
    pass

class TestGoodSink(bugs.StoreContract):
    pass

class TestNackIgnoresDelay(bugs.QueueContract):
    source_class = bugs.NackIgnoresDelay

class TestContentType(bugs.StoreContract):
    writer_class = bugs.IgnoresContentTypeWriter
""")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs",
         "test_broken.py"], cwd=tmp_path, capture_output=True, text=True, timeout=110)
    out = done.stdout
    assert done.returncode == 1, out[-3000:]
    failed = sorted(line.split("::", 1)[1].split(" ")[0] for line in out.splitlines()
                    if line.startswith("FAILED"))
    assert failed == ["TestContentType::test_content_type_and_metadata_are_stored",
                      "TestNackIgnoresDelay::test_nack_delay_is_honoured"], out[-3000:]
    assert "skipped" not in out, out[-3000:]
