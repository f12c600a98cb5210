"""The SQS source against moto over real HTTP: receive, leases, acks, nacks, close."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import boto3
import pytest
from parquet_ingestor.errors import ConfigError, PartialAckError
from parquet_ingestor.message import Message
from parquet_ingestor_sqs.leases import Lease

pytestmark = pytest.mark.aws


@pytest.mark.timeout(120)
def test_drains_500_messages_with_receive_and_ack(q, queue_url, make_source):
    bodies = [json.dumps({"n": i}) for i in range(500)]
    q.send_many(
        queue_url,
        bodies,
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}},
    )
    source = make_source(queue_url, pollers=3)
    seen: dict[str, bytes] = {}
    end = time.monotonic() + 90
    while len(seen) < 500 and time.monotonic() < end:
        batch = source.receive(100, 1.0)
        for message in batch:
            assert message.id not in seen, "duplicate delivery"
            seen[message.id] = message.body
        source.ack(batch)
    assert sorted(seen.values()) == sorted(b.encode() for b in bodies)
    q.wait_until(lambda: q.counts(queue_url) == (0, 0), what="an empty queue")
    assert source.stats["acked"] == 500
    assert source.in_flight == 0


@pytest.mark.timeout(30)
def test_message_fields_and_attributes(q, queue_url, make_source):
    q.sqs.send_message(
        QueueUrl=queue_url,
        MessageBody="héllo",
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "click"},
            "n": {"DataType": "Number", "StringValue": "7"},
        },
    )
    source = make_source(queue_url)
    [message] = q.receive_n(source, 1)
    assert message.body == "héllo".encode()
    assert message.handle.message_id == message.id
    attrs = message.attributes
    assert attrs["message_id"] == message.id
    assert isinstance(attrs["sent_timestamp"], int) and attrs["sent_timestamp"] > 1_600_000_000_000
    assert attrs["approximate_receive_count"] == 1
    assert attrs["message_attributes"] == {"kind": "click", "n": "7"}
    assert "sender_id" in attrs
    source.ack([message])


@pytest.mark.timeout(60)
def test_lease_is_extended_while_messages_are_held(q, queue_url, make_source):
    q.send_many(queue_url, [f"m{i}" for i in range(5)])
    # 3 s, not less: the lease thread extends a lease in its last third (1 s here), and on a
    # loaded machine a thread can be late by a good part of a second.
    source = make_source(queue_url, visibility_timeout="3s", pollers=1)
    held = q.receive_n(source, 5)
    # Another consumer polls for 10.5 s (3.5 visibility timeouts): nothing may come back.
    stolen = []
    end = time.monotonic() + 10.5
    while time.monotonic() < end:
        response = q.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1, MaxNumberOfMessages=10)
        stolen.extend(response.get("Messages", []))
    assert stolen == []
    assert source.stats["lease_extensions"] >= 10  # each of the 5 extended at least twice
    assert source.stats["leases_lost"] == 0
    assert all(m.attributes["approximate_receive_count"] == 1 for m in held)
    source.ack(held)
    q.wait_until(lambda: q.counts(queue_url) == (0, 0), what="an empty queue")
    assert source.stats["possible_duplicates"] == 0


class FlakyDeletes:
    """A real client whose DeleteMessageBatch fails some entries: once, or every time."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.transient: set[str] = set()
        self.persistent: set[str] = set()
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        keep, failed = [], []
        for entry in Entries:
            handle = entry["ReceiptHandle"]
            if handle in self.persistent or handle in self.transient:
                self.transient.discard(handle)
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError",
                               "Message": "injected failure"})
            else:
                keep.append(entry)
        response: dict[str, Any] = {"Successful": [], "Failed": failed}
        if keep:
            real = self._client.delete_message_batch(QueueUrl=QueueUrl, Entries=keep)
            response["Successful"] = real.get("Successful", [])
            response["Failed"] += real.get("Failed", [])
        return response


@pytest.mark.timeout(60)
def test_partial_ack_failures_are_reported_for_the_pipeline_to_retry(
        q, queue_url, make_source, moto_endpoint):
    """One DeleteMessageBatch per 10 messages per call: the pipeline's ack policy is the only
    retry layer of deletes (issue #17: three nested layers made ~100 calls for one batch)."""
    q.send_many(queue_url, [f"m{i}" for i in range(30)])
    client = FlakyDeletes(boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1"))
    # one poller: no concurrent ReceiveMessage calls (see SerializedReceives)
    source = make_source(queue_url, client=client, pollers=1)
    messages = q.receive_n(source, 30)
    transient, persistent = messages[:5], messages[5:8]
    client.transient = {m.handle.receipt_handle for m in transient}
    client.persistent = {m.handle.receipt_handle for m in persistent}
    client.calls = 0
    with pytest.raises(PartialAckError) as info:
        source.ack(messages)
    assert client.calls == 3  # 30 messages, 10 per call, no retry inside
    assert [m.id for m in info.value.failed] == [m.id for m in transient + persistent]
    assert all(a is b for a, b in zip(info.value.failed, transient + persistent, strict=True))
    assert "InternalError" in info.value.reason
    assert source.stats["ack_failures"] == 8
    assert source.stats["acked"] == 22
    assert source.in_flight == 8  # the failed ones stay leased
    with pytest.raises(PartialAckError) as again:  # the pipeline's retry: only the failed ones
        source.ack(info.value.failed)
    assert [m.id for m in again.value.failed] == [m.id for m in persistent]
    q.wait_until(lambda: q.counts(queue_url) == (0, 3), what="3 messages left in flight")
    client.persistent.clear()
    source.ack(again.value.failed)
    q.wait_until(lambda: q.counts(queue_url) == (0, 0), what="an empty queue")
    assert source.in_flight == 0


@pytest.mark.timeout(30)
def test_ack_with_invalid_receipt_handle_is_a_possible_duplicate(queue_url, make_source, caplog):
    source = make_source(queue_url)
    ghost = Message("ghost-id", b"x", {}, Lease("not-a-valid-receipt-handle", "ghost-id", 0.0, 0.0))
    with caplog.at_level(logging.WARNING, logger="parquet_ingestor_sqs"):
        source.ack([ghost])  # must not raise
    assert source.stats["possible_duplicates"] == 1
    assert any("possible duplicate" in r.getMessage() for r in caplog.records)


@pytest.mark.timeout(60)
def test_nack_redelivers_then_redrive_moves_to_dlq(q, sqs, unique_name, make_source):
    dlq_url = sqs.create_queue(QueueName=f"{unique_name}-dlq")["QueueUrl"]
    queue_url = sqs.create_queue(
        QueueName=unique_name,
        Attributes={"RedrivePolicy": q.redrive_policy(q.arn(dlq_url), 2)},
    )["QueueUrl"]
    q.send_many(queue_url, ["a", "b", "c"])
    source = make_source(queue_url, pollers=1)
    first = q.receive_n(source, 3)
    assert {m.attributes["approximate_receive_count"] for m in first} == {1}
    source.nack(first)
    second = q.receive_n(source, 3)
    assert {m.id for m in second} == {m.id for m in first}
    assert {m.attributes["approximate_receive_count"] for m in second} == {2}
    source.nack(second)
    assert source.stats["nacked"] == 6
    dead = q.receive_all(dlq_url, 3)
    assert sorted(m["Body"] for m in dead) == ["a", "b", "c"]
    assert source.receive(10, 1.0) == []
    assert source.in_flight == 0


@pytest.mark.timeout(60)
def test_nack_after_a_lapsed_lease_counts_the_latest_delivery(q, sqs, unique_name, make_source):
    """A message received again while held (its lease lapsed) and then nacked has used its
    second delivery: with maxReceiveCount 2 it is bound for the DLQ, not awaited."""
    dlq_url = sqs.create_queue(QueueName=f"{unique_name}-dlq")["QueueUrl"]
    queue_url = sqs.create_queue(
        QueueName=unique_name,
        Attributes={"RedrivePolicy": q.redrive_policy(q.arn(dlq_url), 2)},
    )["QueueUrl"]
    q.send_many(queue_url, ["lapsed"])
    source = make_source(queue_url, pollers=1)
    [message] = q.receive_n(source, 1)
    first_handle = message.handle.receipt_handle
    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=first_handle,
                                  VisibilityTimeout=0)  # the lease lapses
    q.wait_until(lambda: message.handle.receipt_handle != first_handle,
                 what="the message received again while held")
    assert message.handle.receives == 2
    assert source.receive(10, 0.5) == []  # kept once
    source.nack([message])
    assert source.pending_redelivery == 0
    dead = q.receive_all(dlq_url, 1)
    assert [m["Body"] for m in dead] == ["lapsed"]


class _RedeliveredBeforeNackReturns:
    """A client whose ChangeMessageVisibilityBatch (the nack) returns only once a poller has
    received a message again: the race of a nack with visibility 0 on a busy machine."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.nacking = threading.Event()
        self.received_again = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def receive_message(self, **params: Any) -> Any:
        answer = self._client.receive_message(**params)
        if self.nacking.is_set() and answer.get("Messages"):
            self.received_again.set()
        return answer

    def change_message_visibility_batch(self, **params: Any) -> Any:
        answer = self._client.change_message_visibility_batch(**params)
        if all(e["VisibilityTimeout"] == 0 for e in params["Entries"]):
            self.nacking.set()
            assert self.received_again.wait(20), "the nacked message was not received again"
        return answer


@pytest.mark.timeout(60)
def test_a_nacked_message_received_again_at_once_is_not_awaited(
    q, queue_url, make_source, moto_endpoint
):
    """pending_redelivery counts only nacked messages not received since, even when a poller
    receives one again before nack() returns."""
    q.send_many(queue_url, ["again"])
    client = _RedeliveredBeforeNackReturns(
        boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1"))
    source = make_source(queue_url, pollers=1, client=client)
    [message] = q.receive_n(source, 1)
    source.nack([message], delay=0)
    [again] = q.receive_n(source, 1)
    assert again.id == message.id
    assert source.pending_redelivery == 0
    source.ack([again])


@pytest.mark.timeout(30)
def test_nack_with_delay_keeps_the_message_away(q, queue_url, make_source):
    q.send_many(queue_url, ["later"])
    source = make_source(queue_url, visibility_timeout="2s")
    [message] = q.receive_n(source, 1)
    source.nack([message], delay=120)
    assert source.in_flight == 0
    # Longer than the 2 s visibility timeout: a lease still extended would not matter either way,
    # a lost delay would bring the message back.
    time.sleep(3)
    assert source.receive(10, 1.0) == []
    assert q.counts(queue_url) == (0, 1)


@pytest.mark.timeout(60)
def test_sns_notifications_are_unwrapped(q, sqs, queue_url, make_source, moto_endpoint):
    sns = boto3.client("sns", endpoint_url=moto_endpoint, region_name="us-east-1")
    topic = sns.create_topic(Name=queue_url.rsplit("/", 1)[1])["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=q.arn(queue_url))
    payload = json.dumps({"user": "ada", "n": 1})
    sns.publish(
        TopicArn=topic,
        Message=payload,
        Subject="hello",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "click"}},
    )
    # Raw delivery (not a notification) passes through unchanged.
    sqs.send_message(QueueUrl=queue_url, MessageBody='{"raw": true}')
    source = make_source(queue_url, unwrap="sns")
    messages = {m.body: m for m in q.receive_n(source, 2)}
    assert set(messages) == {payload.encode(), b'{"raw": true}'}
    note = messages[payload.encode()]
    assert note.attributes["message_attributes"] == {"kind": "click"}
    assert note.attributes["sns_topic_arn"] == topic
    assert note.attributes["sns_subject"] == "hello"
    assert note.attributes["sns_message_id"]
    assert note.attributes["message_id"] == note.id != note.attributes["sns_message_id"]
    source.ack(list(messages.values()))
    q.wait_until(lambda: q.counts(queue_url) == (0, 0), what="an empty queue")


@pytest.mark.timeout(60)
def test_fifo_keeps_order_within_a_message_group(q, sqs, unique_name, make_source):
    queue_url = sqs.create_queue(
        QueueName=f"{unique_name}.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    sent: dict[str, list[str]] = {"g0": [], "g1": [], "g2": []}
    for i in range(45):
        group = f"g{i % 3}"
        body = f"{group}-{i:03d}"
        sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageGroupId=group)
        sent[group].append(body)
    source = make_source(queue_url, pollers=4)
    assert source.fifo and source.poller_count == 1
    got: dict[str, list[str]] = {"g0": [], "g1": [], "g2": []}
    end = time.monotonic() + 40
    while sum(map(len, got.values())) < 45 and time.monotonic() < end:
        batch = source.receive(7, 0.5)
        for message in batch:
            got[message.attributes["message_group_id"]].append(message.body.decode())
        source.ack(batch)
    assert got == sent


@pytest.mark.timeout(60)
def test_close_releases_every_unsettled_message(q, queue_url, make_source):
    q.send_many(queue_url, [f"m{i}" for i in range(20)])
    source = make_source(queue_url, pollers=2, visibility_timeout="60s")
    taken = q.receive_n(source, 5)  # held by "the pipeline"
    q.wait_until(lambda: source.stats["received"] == 20, what="all 20 received")
    source.ack(taken[:2])
    source.close()
    source.close()  # idempotent
    assert source.receive(10, 0.1) == []
    # Visibility 0: another consumer gets the 18 unsettled messages at once, not in 60 s.
    again = q.receive_all(queue_url, 18, limit=15)
    assert len(again) == 18
    assert {m["Body"] for m in again} == {f"m{i}" for i in range(20)} - {
        m.body.decode() for m in taken[:2]
    }
    assert source.stats["released"] >= 18


@pytest.mark.timeout(15)
def test_close_waits_for_open_long_polls_and_releases_what_they_get(q, queue_url, make_source):
    """A long poll left open at exit would take the next message and hide it for the whole
    visibility timeout (issue #17): close() waits for it and releases what it got."""
    source = make_source(queue_url, wait_time="3s", pollers=2, visibility_timeout="60s")
    assert source.receive(10, 0.5) == []  # pollers are now inside a long poll
    late = threading.Timer(0.5, lambda: q.send_many(queue_url, ["late"]))
    late.start()
    source.close()
    # no poll outlives close(): in a process that exits next, it would hide the next message
    assert not [t for t in source._pollers if t.is_alive()]
    late.join()
    assert q.counts(queue_url) == (1, 0)  # visible at once, not leased to a closed source


@pytest.mark.timeout(60)
def test_max_in_flight_pauses_polling(q, queue_url, make_source):
    q.send_many(queue_url, [f"m{i}" for i in range(40)])
    source = make_source(queue_url, pollers=2, max_in_flight=15)
    source.start()
    q.wait_until(lambda: source.stats["received"] == 15, what="15 received")
    time.sleep(1.5)  # several poll cycles: nothing more may be taken
    assert source.stats["received"] == 15
    assert source.in_flight == 15
    assert q.counts(queue_url) == (25, 15)
    held = q.receive_n(source, 15)
    source.ack(held[:10])  # room for 10 more
    q.wait_until(lambda: source.stats["received"] == 25, what="10 more received")
    time.sleep(1.0)
    assert source.stats["received"] == 25
    rest = held[10:] + q.receive_n(source, 10)
    source.ack(rest)
    while source.stats["acked"] < 40:
        batch = q.receive_n(source, min(15, 40 - source.stats["acked"]))
        source.ack(batch)
    q.wait_until(lambda: q.counts(queue_url) == (0, 0), what="an empty queue")


@pytest.mark.timeout(30)
def test_missing_queue_is_a_one_line_config_error(moto_endpoint, make_source):
    url = f"{moto_endpoint}/123456789012/no-such-queue"
    with pytest.raises(ConfigError) as info:
        make_source(url)
    assert str(info.value) == f"source 'sqs' option 'queue_url': queue {url} does not exist"


def test_queue_url_must_be_a_url(make_source):
    with pytest.raises(ConfigError, match="option 'queue_url': expected a queue URL"):
        make_source("my-queue")


@pytest.mark.timeout(60)
def test_counters_reach_context_metrics(q, queue_url, make_source):
    class Metrics:
        def __init__(self) -> None:
            self.counts: dict[str, int] = {}

        def incr(self, name: str, n: int = 1) -> None:
            self.counts[name] = self.counts.get(name, 0) + n

    class Context:
        workers = 2
        metrics = Metrics()

    q.send_many(queue_url, ["a", "b"])
    source = make_source(queue_url, visibility_timeout="1s")
    source.start(Context())
    held = q.receive_n(source, 2)
    q.wait_until(lambda: Context.metrics.counts.get("lease_extensions", 0) >= 2, what="extensions")
    source.ack(held)
    # the lease thread may be mid-round (its count not yet added to both): stop it first
    source.close()
    q.wait_until(lambda: not source._lease_thread.is_alive(), limit=30, what="the lease thread")
    # only lease extensions go to the core's metrics: it counts receives, acks and ack
    # failures itself, so forwarding the source's own counts would count them twice
    assert source.stats["received"] == 2 and source.stats["acked"] == 2
    assert set(Context.metrics.counts) == {"lease_extensions"}
    assert Context.metrics.counts["lease_extensions"] == source.stats["lease_extensions"]
