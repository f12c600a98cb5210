"""The SQS source: background long polling, leases kept alive while batches fill, batch acks.

Poller threads long-poll ReceiveMessage into an internal FIFO queue that :meth:`SqsSource.receive`
drains. Every message received is leased: a lease thread extends its visibility before it lapses
(ChangeMessageVisibilityBatch), for as long as the pipeline holds it, until it is acked
(DeleteMessageBatch), nacked or released by :meth:`SqsSource.close`. Several processes can consume
one queue: SQS hands each message to one of them at a time.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from parquet_ingestor.errors import ConfigError, PartialAckError
from parquet_ingestor.interfaces import BaseSource
from parquet_ingestor.message import Message

from .batches import call_in_batches, describe_error
from .client import make_client, missing_queue, queue_attributes
from .leases import Lease, LeaseTable
from .messages import receive_count, to_message, unwrap_sns
from .options import MAX_VISIBILITY, WHERE, SqsSettings

log = logging.getLogger("parquet_ingestor_sqs")

LEASE_SAFETY = 5.0  # seconds kept clear of SQS's 12-hour visibility limit
EXTEND_WORKERS = 8  # concurrent ChangeMessageVisibilityBatch calls per lease round or release
CLOSE_JOIN_TIMEOUT = 0.5  # how long close() waits for the lease thread
MAX_AWAITING = 100_000  # nacked message ids remembered until received again (bounded memory)
CLOSE_POLL_MARGIN = 5.0  # close() waits for open long polls: wait_time plus this
STAT_NAMES = (
    "received",
    "acked",
    "nacked",
    "released",
    "polls",
    "empty_polls",
    "receive_errors",
    "lease_extensions",
    "lease_extension_failures",
    "leases_lost",
    "ack_retries",
    "ack_failures",
    "possible_duplicates",
    "received_in_flight",
)
# Forwarded to the run's metrics. Not ack_failures: the pipeline counts those itself, once its own
# retries of a PartialAckError are spent; counting each raise here too would inflate it.
_METRIC_STATS = frozenset({"lease_extensions", "leases_lost"})


class SqsSource(BaseSource):
    """Messages from one SQS queue (standard or FIFO).

    ``client`` replaces the boto3 client (tests, benchmarks). ``stats`` counts what happened;
    ``lease_extensions`` also goes to ``context.metrics.incr`` when started.
    """

    #: seconds a message can be held: SQS ends a message's invisibility 12 hours after it was
    #: received, so files holding its rows commit before then (10 minutes to spare)
    hold_budget: float = MAX_VISIBILITY - 600

    def __init__(
        self,
        queue_url: str,
        region: str | None = None,
        endpoint_url: str | None = None,
        wait_time: float | str | None = None,
        max_messages: int | None = None,
        visibility_timeout: float | str | None = None,
        pollers: int | str | None = None,
        max_in_flight: int | None = None,
        max_in_flight_bytes: int | str | None = None,
        attributes: Sequence[str] | str | None = None,
        retry_delay: float | str | None = None,
        unwrap: str | None = None,
        check_queue: bool | None = None,
        max_pollers: int | None = None,
        *,
        client: Any = None,
    ) -> None:
        settings = SqsSettings.from_options(
            queue_url=queue_url,
            region=region,
            endpoint_url=endpoint_url,
            wait_time=wait_time,
            max_messages=max_messages,
            visibility_timeout=visibility_timeout,
            pollers=pollers,
            max_in_flight=max_in_flight,
            max_in_flight_bytes=max_in_flight_bytes,
            attributes=attributes,
            retry_delay=retry_delay,
            unwrap=unwrap,
            check_queue=check_queue,
            max_pollers=max_pollers,
        )
        self.settings = settings
        self.client = client if client is not None else make_client(settings)
        self.fifo = settings.fifo
        self.queue_attributes: dict[str, str] = {}
        if settings.check_queue:
            self.queue_attributes = queue_attributes(self.client, settings)
            self.fifo = self.fifo or self.queue_attributes.get("FifoQueue") == "true"
        # One poller on FIFO queues: two could interleave the batches of one message group.
        self.poller_count = 1 if self.fifo else settings.pollers
        self.stats: dict[str, int] = dict.fromkeys(STAT_NAMES, 0)
        self._url = settings.queue_url
        self._unwrap_sns = settings.unwrap == "sns"
        self._table = LeaseTable(settings.max_in_flight, settings.max_in_flight_bytes)
        self._ready: deque[Message] = deque()
        self._ready_cond = threading.Condition()
        self._stop = threading.Event()
        self._visibility_lock = threading.Lock()  # orders lease extensions before nacks/releases
        self._stats_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._pollers: list[threading.Thread] = []  # every poller started and not seen ended
        self._live: set[int] = set()  # indices of the pollers running (or finishing a poll)
        self._lease_thread: threading.Thread | None = None
        self._started = False
        self._closed = False
        self._metrics: Any = None
        self._fatal: ConfigError | None = None  # set when the queue turns out deleted
        self._awaiting: set[str] = set()  # nacked, to be delivered again, not received since
        self._unacked_written: set[str] = set()  # written, but the delete failed
        self._max_receive = _max_receive_count(self.queue_attributes)
        self._receive_params: dict[str, Any] = {
            "QueueUrl": self._url,
            "WaitTimeSeconds": settings.wait_time,
            "VisibilityTimeout": settings.visibility_timeout,
            "MessageSystemAttributeNames": list(settings.system_attributes),
        }
        if settings.message_attributes:
            self._receive_params["MessageAttributeNames"] = list(settings.message_attributes)

    # ---------------------------------------------------------------------------- lifecycle

    def start(self, context: Any = None) -> None:
        """Start the pollers and the lease thread (``receive`` does it too, if not called)."""
        metrics = getattr(context, "metrics", None)
        if callable(getattr(metrics, "incr", None)):
            self._metrics = metrics
        self._start_threads()

    def _start_threads(self) -> None:
        with self._state_lock:
            if self._started or self._closed:
                return
            self._started = True
            self._spawn_pollers()
            self._lease_thread = threading.Thread(
                target=self._lease_loop, name="sqs-leases", daemon=True
            )
            self._lease_thread.start()

    def _spawn_pollers(self) -> None:
        """Start the pollers missing below ``poller_count`` (under ``_state_lock``)."""
        self._pollers = [thread for thread in self._pollers if thread.is_alive()]
        for i in range(self.poller_count):
            if i not in self._live:
                thread = threading.Thread(
                    target=self._poll_loop, args=(i,), name=f"sqs-poller-{i + 1}", daemon=True
                )
                self._live.add(i)
                self._pollers.append(thread)
                thread.start()

    @property
    def pollers(self) -> int:
        """Long-poll threads now (the pipeline's autoscaler resizes them with pollers=auto)."""
        return self.poller_count

    @property
    def poller_bounds(self) -> tuple[int, int] | None:
        """``(1, max_pollers)`` with ``pollers=auto`` (never on FIFO queues), else None."""
        if self.fifo or not self.settings.pollers_auto:
            return None
        return 1, self.settings.max_pollers

    def resize_pollers(self, n: int) -> int:
        """Run ``n`` pollers: new ones start at once, surplus ones stop after their current
        long poll (whose messages are handed over as usual). Returns the count now set."""
        if self.fifo:
            return self.poller_count
        with self._state_lock:
            self.poller_count = max(1, min(self.settings.max_pollers, n))
            if self._started and not self._closed:
                self._spawn_pollers()
            return self.poller_count

    def _retired(self, index: int) -> bool:
        """A poller at or above ``poller_count`` stops (and says so, under the lock)."""
        with self._state_lock:
            if index < self.poller_count:
                return False
            self._live.discard(index)
            return True

    def close(self) -> None:
        """Stop polling and release every unsettled message (visibility 0). Idempotent.

        Long polls still open are waited for (at most ``wait_time`` plus a margin): SQS would
        otherwise hand the next messages to a poll nobody reads, and they would stay invisible
        for the visibility timeout. What they receive now is released at once by the poller.
        """
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        with self._ready_cond:
            self._ready.clear()
            self._ready_cond.notify_all()
        leases = self._table.close()
        if self._lease_thread is not None:
            self._lease_thread.join(CLOSE_JOIN_TIMEOUT)
        with ThreadPoolExecutor(EXTEND_WORKERS, thread_name_prefix="sqs-release") as pool:
            released = self._change_visibility(leases, 0, "release", pool)
        self._count("released", released)
        if leases:
            log.info("sqs: released %d unsettled message(s) back to %s", released, self._url)
        polling = [thread for thread in self._pollers if thread.is_alive()]
        if polling:
            log.info("sqs: waiting up to %ds for %d open long poll(s) to end (lower the "
                     "wait_time option to stop faster)", self.settings.wait_time, len(polling))
        deadline = time.monotonic() + self.settings.wait_time + CLOSE_POLL_MARGIN
        for thread in polling:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> SqsSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def in_flight(self) -> int:
        """Messages received and not settled yet (waiting here or held by the pipeline)."""
        return len(self._table)

    # ------------------------------------------------------------------------------ receive

    def receive(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to ``max_messages`` messages the pollers received, waiting at most ``timeout`` s.

        Raises ConfigError once the queue is found deleted: the run stops (exit 2) instead of
        polling a queue that is gone for ever.
        """
        if not self._started:
            self._start_threads()
        ready = self._ready
        with self._ready_cond:
            if not ready:
                if self._fatal is not None:
                    raise self._fatal
                if self._closed or timeout <= 0:
                    return []
                self._ready_cond.wait_for(
                    lambda: ready or self._closed or self._fatal is not None, timeout)
            n = min(max_messages, len(ready))
            if n <= 0:
                return []
            popleft = ready.popleft
            return [popleft() for _ in range(n)]

    def _poll_loop(self, index: int = 0) -> None:
        """One poller: reserve room under max_in_flight, long-poll, hand the messages over."""
        table = self._table
        stop = self._stop
        most = self.settings.max_messages
        backoff = 0.0
        attempt_id: str | None = None
        while not stop.is_set() and not self._retired(index):
            n = table.reserve(most, timeout=1.0)
            if n == 0:
                continue
            params = dict(self._receive_params, MaxNumberOfMessages=n)
            if self.fifo:
                # Reused after a failed call, so SQS can hand back the same messages.
                attempt_id = attempt_id or uuid.uuid4().hex
                params["ReceiveRequestAttemptId"] = attempt_id
            started = time.monotonic()
            try:
                response = self.client.receive_message(**params)
            except Exception as exc:  # noqa: BLE001 - keep polling through outages
                table.add((), n)
                if stop.is_set():
                    return
                if missing_queue(exc):  # deleted: retrying cannot help, and /healthz must know
                    self._fatal = ConfigError(
                        f"{WHERE} option 'queue_url': queue {self._url} no longer exists "
                        "(deleted while running?)")
                    stop.set()
                    with self._ready_cond:
                        self._ready_cond.notify_all()
                    return
                self._count("receive_errors", 1)
                backoff = min(max(backoff * 2, 0.5), 10.0)
                code, reason = describe_error(exc)
                log.warning("sqs: ReceiveMessage failed (%s: %s); retrying in %.1fs",
                            code, reason, backoff)
                stop.wait(backoff)
                continue
            backoff = 0.0
            attempt_id = None
            self._accept(response.get("Messages") or (), n, started)

    def _accept(self, entries: Sequence[Mapping[str, Any]], reserved: int, started: float) -> None:
        """Lease and queue what one ReceiveMessage call returned (or release it after close)."""
        deadline = started + self.settings.visibility_timeout
        leases: list[Lease] = []
        messages: list[Message] = []
        unwrap = self._unwrap_sns
        again = 0
        try:
            for entry in entries:
                receives = receive_count(entry)
                if self._table.renew(entry["MessageId"], entry["ReceiptHandle"], deadline,
                                     receives):
                    again += 1  # still in flight here: never hand it over twice
                    continue
                lease = Lease(entry["ReceiptHandle"], entry["MessageId"], started, deadline,
                              receives)
                message = to_message(entry, lease)
                if unwrap:
                    message = unwrap_sns(message)
                lease.size = len(message.body)
                leases.append(lease)
                messages.append(message)
        except Exception:  # noqa: BLE001 - a malformed answer must not kill the poller
            log.exception("sqs: could not read a ReceiveMessage answer; its messages come "
                          "back after the visibility timeout")
            self._table.add((), reserved)
            return
        if not self._table.add(leases, reserved):
            # Closed while this poll was in flight: give the messages straight back.
            for lease in leases:
                lease.settled = True
            self._count("released", self._change_visibility(leases, 0, "release"))
            return
        if self._awaiting:
            with self._stats_lock:
                self._awaiting.difference_update(entry["MessageId"] for entry in entries)
        if again:
            self._count("leases_lost", again)
            self._count("received_in_flight", again)
            log.warning("sqs: %d message(s) received again while still in flight here (their "
                        "lease lapsed, e.g. %s): kept once, with the new receipt handle",
                        again, entries[0]["MessageId"])
        with self._stats_lock:
            stats = self.stats
            stats["polls"] += 1
            stats["received"] += len(messages)
            if not messages:
                stats["empty_polls"] += 1
        if messages:
            with self._ready_cond:
                self._ready.extend(messages)
                self._ready_cond.notify_all()

    # ------------------------------------------------------------------------------- leases

    def _lease_loop(self) -> None:
        """Extend leases that would lapse within a third of the visibility timeout."""
        visibility = self.settings.visibility_timeout
        tick = min(max(visibility / 6.0, 0.05), 5.0)
        horizon = visibility / 3.0
        with ThreadPoolExecutor(EXTEND_WORKERS, thread_name_prefix="sqs-lease") as pool:
            while not self._stop.wait(tick):
                try:
                    self.extend_due(horizon, pool)
                except Exception:  # noqa: BLE001 - the lease thread must survive anything
                    log.exception("sqs: lease extension round failed")

    def extend_due(self, horizon: float, executor: Executor | None = None) -> int:
        """Extend every lease lapsing within ``horizon`` seconds; returns how many were extended.

        The round holds the visibility lock, so a nack or release waits for it to finish and an
        extension can never undo it.
        """
        due = self._table.due(time.monotonic() + horizon, most=self._table.limit)
        if not due:
            return 0
        visibility = self.settings.visibility_timeout
        now = time.monotonic()
        timeouts: dict[Lease, int] = {}
        capped: list[Lease] = []
        with self._visibility_lock:
            for lease in due:
                if lease.settled:
                    continue
                left = MAX_VISIBILITY - (now - lease.received_at) - LEASE_SAFETY
                seconds = min(visibility, int(left))
                if seconds < 1:
                    capped.append(lease)
                else:
                    timeouts[lease] = seconds
            live = list(timeouts)
            failures = call_in_batches(
                self._change_batch,
                live,
                lambda id_, lease: {
                    "Id": id_,
                    "ReceiptHandle": lease.receipt_handle,
                    "VisibilityTimeout": timeouts[lease],
                },
                executor,
            )
        if capped:
            self._table.finalize(capped)
            log.warning("sqs: %d message(s) held for 12 hours, SQS's limit; they will be "
                        "delivered again (possible duplicates)", len(capped))
        failed = {f.lease for f in failures}
        ok = [lease for lease in live if lease not in failed]
        self._table.extended((lease for lease in ok if timeouts[lease] == visibility),
                             now + visibility)
        short = [lease for lease in ok if timeouts[lease] < visibility]
        if short:
            self._table.finalize(short)
        lost = [f for f in failures if f.lost_handle and not f.lease.settled]
        if lost:
            self._table.finalize(f.lease for f in lost)
            self._count("leases_lost", len(lost))
            log.warning("sqs: lease of %d message(s) lapsed before it could be extended (e.g. %s); "
                        "they may be delivered again (possible duplicates)",
                        len(lost), lost[0].lease.message_id)
        other = [f for f in failures if not f.lost_handle]
        if other:
            self._count("lease_extension_failures", len(other))
            log.warning("sqs: could not extend %d lease(s): %s: %s; retrying",
                        len(other), other[0].code, other[0].reason)
        self._count("lease_extensions", len(ok))
        return len(ok)

    # -------------------------------------------------------------------------- ack / nack

    def ack(self, messages: Sequence[Message]) -> None:
        """Delete messages (10 per call), once; raise PartialAckError for the entries that failed.

        The retry budget of deletes is the pipeline's ack policy (``--ack-attempts``): neither
        this method nor the client retries (see ``client.py``). A receipt handle that is no
        longer valid (the lease lapsed) cannot be retried: it is logged as a possible duplicate
        and counts as settled.
        """
        if not messages:
            return
        leases: list[Lease] = [m.handle for m in messages]
        failures = call_in_batches(self._delete_batch, leases, _delete_entry)
        lost = [f for f in failures if f.lost_handle]
        if lost:
            self._count("possible_duplicates", len(lost))
            log.warning("sqs: %d message(s) could not be deleted because the receipt handle "
                        "is no longer valid (e.g. %s: %s); they may be delivered again "
                        "(possible duplicates)", len(lost), lost[0].lease.message_id,
                        lost[0].code)
            failures = [f for f in failures if not f.lost_handle]
        if not failures:
            self._table.settle(leases)
            self._count("acked", len(leases))
            if self._unacked_written:  # a retried delete went through
                with self._stats_lock:
                    self._unacked_written.difference_update(m.id for m in messages)
            return
        failed_ids = {id(f.lease) for f in failures}
        with self._stats_lock:  # written: a nack of these after the failed delete is no work left
            if len(self._unacked_written) < MAX_AWAITING:
                self._unacked_written.update(f.lease.message_id for f in failures)
        self._table.settle(lease for lease in leases if id(lease) not in failed_ids)
        self._count("acked", len(leases) - len(failed_ids))
        self._count("ack_failures", len(failed_ids))
        first = failures[0]
        raise PartialAckError(
            [m for m in messages if id(m.handle) in failed_ids],
            f"DeleteMessageBatch failed: {first.code}: {first.reason}",
        )

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        """Make messages visible again after ``delay`` (default: the retry_delay option).

        The queue's redrive policy moves a message to its dead-letter queue once it has been
        received maxReceiveCount times.
        """
        if not messages:
            return
        seconds = self.settings.retry_delay if delay is None else math.ceil(delay)
        seconds = min(max(int(seconds), 0), MAX_VISIBILITY)
        leases: list[Lease] = [m.handle for m in messages]
        self._table.settle(leases)
        # awaited before they become visible: a poller may receive them again at once, and
        # that receive must find them awaited to clear them
        self._await_redelivery(messages)
        self._change_visibility(leases, seconds, "nack")
        self._count("nacked", len(leases))

    @property
    def pending_redelivery(self) -> int:
        """Messages nacked that SQS will deliver again (not bound for the dead-letter queue)
        and that were not received since: an ``--exit-when-idle`` run that ends with some
        has left work in the queue, and exits 1."""
        with self._stats_lock:
            return len(self._awaiting)

    def _await_redelivery(self, messages: Sequence[Message]) -> None:
        """Remember nacked messages until received again; not those whose receive count has
        reached the redrive policy's maxReceiveCount (SQS moves them to the DLQ instead)."""
        limit = self._max_receive
        with self._stats_lock:
            for message in messages:
                if message.id in self._unacked_written:
                    # written, only its delete failed: it may be gone already (the answer was
                    # lost) or come back as a duplicate; either way no work is left
                    self._unacked_written.discard(message.id)
                    continue
                # the lease's count: the message may have been received again while held here
                count = message.handle.receives if isinstance(message.handle, Lease) else None
                if limit and count is not None and count >= limit:
                    continue
                if len(self._awaiting) < MAX_AWAITING:
                    self._awaiting.add(message.id)

    # --------------------------------------------------------------------------- internals

    def _delete_batch(self, entries: list[dict[str, Any]]) -> Mapping[str, Any]:
        return self.client.delete_message_batch(QueueUrl=self._url, Entries=entries)  # type: ignore[no-any-return]

    def _change_batch(self, entries: list[dict[str, Any]]) -> Mapping[str, Any]:
        return self.client.change_message_visibility_batch(QueueUrl=self._url, Entries=entries)  # type: ignore[no-any-return]

    def _change_visibility(
        self, leases: Sequence[Lease], seconds: int, what: str, executor: Executor | None = None
    ) -> int:
        """Set the visibility of settled leases (nack, release); returns how many succeeded."""
        if not leases:
            return 0
        with self._visibility_lock:
            pass  # wait out an extension in progress, so it cannot override this change
        failures = call_in_batches(
            self._change_batch,
            leases,
            lambda id_, lease: {
                "Id": id_,
                "ReceiptHandle": lease.receipt_handle,
                "VisibilityTimeout": seconds,
            },
            executor,
        )
        other = [f for f in failures if not f.lost_handle]
        if other:
            log.warning("sqs: %s of %d message(s) failed (%s: %s); they come back when their "
                        "visibility timeout lapses", what, len(other), other[0].code,
                        other[0].reason)
        return len(leases) - len(failures)

    def _count(self, name: str, n: int) -> None:
        if not n:
            return
        with self._stats_lock:
            self.stats[name] += n
        if self._metrics is not None and name in _METRIC_STATS:
            try:
                self._metrics.incr(name, n)
            except Exception:  # noqa: BLE001 - metrics must never break the source
                log.debug("sqs: metrics.incr(%r) failed", name, exc_info=True)


def _max_receive_count(attributes: Mapping[str, str]) -> int:
    """maxReceiveCount of the queue's redrive policy (0: none, or unknown)."""
    try:
        return int(json.loads(attributes.get("RedrivePolicy") or "{}").get("maxReceiveCount", 0))
    except (ValueError, TypeError, AttributeError):
        return 0


def _delete_entry(id_: str, lease: Lease) -> dict[str, Any]:
    return {"Id": id_, "ReceiptHandle": lease.receipt_handle}
