"""The redis-streams source against a real redis-server: the test kit's source contract (both
nack modes), how it is registered, and each option that changes what reaches Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis
from parquet_ingestor import ConfigError, Source
from parquet_ingestor.testing import SourceContract, receive_all
from parquet_ingestor_redis import plugin
from parquet_ingestor_redis.source import RedisStreamsSource


class TestRedisStreamsContract(SourceContract):
    """Leases declared to the suite: claim_idle is the lease length; each consumer the suite
    opens gets its own name, as separate processes would."""

    nack = "pending"
    lease_length = 4.5
    release_within = 1.5
    nack_delay = 1.5

    @pytest.fixture(autouse=True)
    def _setup(self, redis_url: str, stream: str, plugin_registry: Any) -> None:
        self.url, self.stream = redis_url, stream
        self.registry = plugin_registry(("redis", plugin))

    def make_source(self, bodies: list[bytes]) -> Callable[[], Source]:
        client = redis.Redis.from_url(self.url)
        for body in bodies:
            client.xadd(self.stream, {"body": body})
        client.close()
        spec = self.registry.get("source", "redis-streams")
        names = iter(range(1, 1000))
        options = {"url": self.url, "stream": self.stream, "block": "200ms",
                   "claim_idle": f"{self.lease_length:g}s", "nack": self.nack}
        return lambda: spec.create({**options, "consumer": f"suite-{next(names)}"})

    def test_group_is_settled_after_a_full_round(self, client: redis.Redis) -> None:
        source = self.make_source([b'{"a": 1}', b'{"a": 2}'])()
        got = receive_all(source, 2)
        assert client.xpending(self.stream, "parquet-ingestor")["pending"] == 2
        source.ack(got)
        source.close()
        assert client.xpending(self.stream, "parquet-ingestor")["pending"] == 0


class TestRedisStreamsReaddContract(TestRedisStreamsContract):
    nack = "readd"


def make(redis_url: str, stream: str, **options: Any) -> RedisStreamsSource:
    return RedisStreamsSource(stream=stream, url=redis_url, block=0.2, claim_idle=30.0,
                              **options)


def test_registered_lazily_with_declared_options(plugin_registry: Any) -> None:
    import sys

    sys.modules.pop("parquet_ingestor_redis.source", None)
    spec = plugin_registry(("redis", plugin)).get("source", "redis-streams")
    assert isinstance(spec.factory, str) and "parquet_ingestor_redis.source" not in sys.modules
    names = [o.name for o in spec.options]
    for name in ("url", "stream", "group", "consumer", "block", "count", "claim_idle",
                 "create", "field", "delete", "nack"):
        assert name in names
    with pytest.raises(ConfigError, match="option 'nack'"):
        spec.parse({"stream": "s", "nack": "drop"})
    with pytest.raises(ConfigError, match="option 'claim_idle'"):
        spec.parse({"stream": "s", "claim_idle": "soon"})
    with pytest.raises(ConfigError, match="needs option 'stream'"):
        spec.parse({})
    parsed = spec.parse({"stream": "s", "block": "500ms", "claim_idle": "2m", "create": "no"})
    assert (parsed["block"], parsed["claim_idle"], parsed["create"]) == (0.5, 120.0, False)
    assert parsed["url"] == "redis://127.0.0.1:6379/0" and parsed["field"] == "body"


def test_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="option 'url'"):
        RedisStreamsSource(stream="s", url="http://example.com")


def test_missing_group_without_create_names_the_option(redis_url: str, stream: str,
                                                        client: redis.Redis) -> None:
    client.xadd(stream, {"body": b"x"})
    source = make(redis_url, stream, create=False)
    with pytest.raises(ConfigError, match="create=true"):
        source.receive(10, 0.1)
    source.close()


def test_field_and_whole_entry_bodies(redis_url: str, stream: str, client: redis.Redis) -> None:
    client.xadd(stream, {"payload": b'{"n": 1}', "kind": b"click"})
    client.xadd(stream, {"other": b"no payload here"})
    named = make(redis_url, stream, field="payload", group="g1")
    got = receive_all(named, 2)
    assert [m.body for m in got] == [b'{"n": 1}', b""]  # missing field: empty, the transformer rejects
    assert got[0].attributes["stream"] == stream and got[0].id == got[0].attributes["entry_id"]
    named.ack(got)
    named.close()
    whole = make(redis_url, stream, field="*", group="g2")
    got = receive_all(whole, 2)
    assert [json.loads(m.body) for m in got] == [{"payload": '{"n": 1}', "kind": "click"},
                                                 {"other": "no payload here"}]
    whole.ack(got)
    whole.close()


def test_delete_removes_acked_entries(redis_url: str, stream: str, client: redis.Redis) -> None:
    for i in range(10):
        client.xadd(stream, {"body": str(i).encode()})
    source = make(redis_url, stream, delete=True)
    got = receive_all(source, 10)
    source.ack(got[:4])
    assert client.xlen(stream) == 6
    source.ack(got[4:])
    assert client.xlen(stream) == 0
    source.close()
    client.xadd(stream, {"body": b"kept"})
    kept = make(redis_url, stream)  # default: entries stay in the stream after XACK
    kept.ack(receive_all(kept, 1))
    assert client.xlen(stream) == 1
    assert client.xpending(stream, "parquet-ingestor")["pending"] == 0
    kept.close()


def test_readd_moves_the_entry_to_the_end(redis_url: str, stream: str,
                                          client: redis.Redis) -> None:
    first = client.xadd(stream, {"body": b"a", "extra": b"kept"}).decode()
    client.xadd(stream, {"body": b"b"})
    source = make(redis_url, stream, nack="readd")
    got = receive_all(source, 2)
    source.nack([m for m in got if m.id == first])
    again = receive_all(source, 1)
    assert [m.body for m in again] == [b"a"] and again[0].id > got[-1].id
    assert again[0].handle.fields == {b"body": b"a", b"extra": b"kept"}
    assert client.xpending(stream, "parquet-ingestor")["pending"] == 2  # b and the copy of a
    source.ack([*again, got[1]])
    assert client.xpending(stream, "parquet-ingestor")["pending"] == 0
    source.close()


def test_nack_without_delay_waits_for_claim_idle(redis_url: str, stream: str,
                                                 client: redis.Redis) -> None:
    client.xadd(stream, {"body": b"x"})
    source = RedisStreamsSource(stream=stream, url=redis_url, block=0.1, claim_idle=0.6)
    (message,) = receive_all(source, 1)
    source.nack([message])  # stays pending, no longer kept alive
    assert client.xpending(stream, "parquet-ingestor")["pending"] == 1
    back = receive_all(source, 1, timeout=10)
    assert [m.id for m in back] == [message.id]
    pending = client.xpending_range(stream, "parquet-ingestor", "-", "+", 10)
    assert pending[0]["times_delivered"] >= 2
    source.ack(back)
    source.close()


def test_held_entries_stay_ours_past_claim_idle(redis_url: str, stream: str,
                                                client: redis.Redis) -> None:
    """The lease keeper resets the idle time, so a live consumer is never robbed."""
    import time

    for i in range(5):
        client.xadd(stream, {"body": str(i).encode()})
    # claim_idle 1 s: the keeper touches every 1/3 s, so it may be 2/3 s late on a loaded
    # machine before an entry counts as idle (with 0.5 s, a 1/3 s hiccup lost it)
    holder = RedisStreamsSource(stream=stream, url=redis_url, block=0.1, claim_idle=1.0,
                                consumer="holder")
    held = receive_all(holder, 5)
    time.sleep(3.0)  # three claim_idle periods while the batch is "filling"
    thief = RedisStreamsSource(stream=stream, url=redis_url, block=0.1, claim_idle=1.0,
                               consumer="thief")
    assert not receive_all(thief, 1, timeout=2.0)  # several XAUTOCLAIM passes (every 0.5 s)
    holder.ack(held)
    holder.close()
    thief.close()


def test_close_releases_to_other_consumers_at_once(redis_url: str, stream: str,
                                                   client: redis.Redis) -> None:
    for i in range(6):
        client.xadd(stream, {"body": str(i).encode()})
    first = RedisStreamsSource(stream=stream, url=redis_url, block=0.1, claim_idle=3600,
                               consumer="first")
    got = receive_all(first, 6)
    first.ack(got[:2])
    first.close()
    second = RedisStreamsSource(stream=stream, url=redis_url, block=0.1, claim_idle=3600,
                                consumer="second")
    taken = receive_all(second, 4, timeout=5)
    assert sorted(m.id for m in taken) == sorted(m.id for m in got[2:])
    second.ack(taken)
    second.close()
    assert client.xpending(stream, "parquet-ingestor")["pending"] == 0


def test_restart_with_the_same_consumer_name_reads_its_own_pending(
        redis_url: str, stream: str, client: redis.Redis) -> None:
    for i in range(3):
        client.xadd(stream, {"body": str(i).encode()})
    crashed = RedisStreamsSource(stream=stream, url=redis_url, block=0.1, claim_idle=3600,
                                 consumer="fixed")
    got = receive_all(crashed, 3)
    crashed._held.stop()  # simulate a crash: no close(), nothing released
    restarted = RedisStreamsSource(stream=stream, url=redis_url, block=0.1, claim_idle=3600,
                                   consumer="fixed")
    back = receive_all(restarted, 3, timeout=5)
    assert sorted(m.id for m in back) == sorted(m.id for m in got)
    restarted.ack(back)
    restarted.close()
