"""SQS batch calls (DeleteMessageBatch, ChangeMessageVisibilityBatch), 10 entries per call.

A whole call that fails counts as a failure of each of its entries, so callers deal with one
kind of result: the entries that did not succeed, with SQS's error code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from .leases import Lease

BATCH_SIZE = 10  # SQS's maximum number of entries per batch call
_IDS = tuple(str(i) for i in range(BATCH_SIZE))

#: Codes meaning the receipt handle is no longer any good (the lease lapsed, or the message is gone).
LOST_HANDLE_CODES = frozenset(
    {
        "ReceiptHandleIsInvalid",
        "AWS.SimpleQueueService.ReceiptHandleIsInvalid",
        "InvalidReceiptHandle",
        "MessageNotInflight",
        "AWS.SimpleQueueService.MessageNotInflight",
    }
)


@dataclass(slots=True)
class EntryFailure:
    """One entry of a batch call that did not succeed."""

    lease: Lease
    code: str
    reason: str

    @property
    def lost_handle(self) -> bool:
        """The receipt handle expired or the message no longer exists: retrying cannot help."""
        if self.code in LOST_HANDLE_CODES:
            return True
        return self.code == "InvalidParameterValue" and "receipt handle" in self.reason.lower()


def call_in_batches(
    send: Callable[[list[dict[str, Any]]], Mapping[str, Any]],
    leases: Sequence[Lease],
    entry: Callable[[str, Lease], dict[str, Any]],
    executor: Executor | None = None,
) -> list[EntryFailure]:
    """Call ``send(entries)`` for every 10 leases; return the entries that failed.

    With an ``executor``, the calls run concurrently (closing with 20,000 leases in flight
    means 2,000 calls: one after the other they would take most of a minute).
    """
    chunks = [leases[i : i + BATCH_SIZE] for i in range(0, len(leases), BATCH_SIZE)]
    if executor is None or len(chunks) < 3:
        failures: list[EntryFailure] = []
        for chunk in chunks:
            failures.extend(_call_one(send, chunk, entry))
        return failures
    futures = [executor.submit(_call_one, send, chunk, entry) for chunk in chunks]
    return [failure for future in futures for failure in future.result()]


def _call_one(
    send: Callable[[list[dict[str, Any]]], Mapping[str, Any]],
    chunk: Sequence[Lease],
    entry: Callable[[str, Lease], dict[str, Any]],
) -> list[EntryFailure]:
    entries = [entry(_IDS[i], lease) for i, lease in enumerate(chunk)]
    try:
        response = send(entries)
    except Exception as exc:  # noqa: BLE001 - network, throttling, permissions: all retryable here
        code, reason = describe_error(exc)
        return [EntryFailure(lease, code, reason) for lease in chunk]
    failed = response.get("Failed")
    if not failed:
        return []
    return [
        EntryFailure(chunk[int(item["Id"])], item.get("Code", ""), item.get("Message", ""))
        for item in failed
    ]


def describe_error(exc: BaseException) -> tuple[str, str]:
    """``(code, message)`` of a botocore ClientError, or the exception's type and text."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        return str(error.get("Code") or type(exc).__name__), str(error.get("Message") or exc)
    return type(exc).__name__, str(exc)
