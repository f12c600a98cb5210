"""The unit a source hands over and must later settle: a message, and the reason one is rejected."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from .jsoncodec import loads as _loads

_NO_ATTRIBUTES: Mapping[str, Any] = MappingProxyType({})


class Message:
    """One message from a source.

    ``body`` is the raw payload; ``attributes`` carries source metadata (SQS message id, sent
    timestamp, receive count, message attributes...); ``handle`` is whatever the source needs to
    settle it later (a receipt handle, a stream id). ``deliveries`` is how many times the
    message has been delivered, this time included, when the source knows it (SQS
    ApproximateReceiveCount, Redis times_delivered); None lets the core count it (what
    ``--max-deliveries`` compares). Messages compare by identity. A plain slotted class, not a
    dataclass: sources create millions of these.

    ``records`` is how many records the message holds: 1, or N for a *block* of N lines
    (``\n``-separated, no line break at the end) that a source hands over as one message when
    the run allows it (:attr:`~parquet_ingestor.interfaces.RunContext.multi_record`). A
    subclass sets it per instance; see ``Source.split`` for how a block's lines are settled
    one by one when one of them is rejected.
    """

    __slots__ = ("id", "body", "attributes", "handle", "deliveries")
    records: int = 1

    def __init__(
        self,
        id: str,  # noqa: A002 - the natural name
        body: bytes,
        attributes: Mapping[str, Any] = _NO_ATTRIBUTES,
        handle: Any = None,
        deliveries: int | None = None,
    ) -> None:
        self.id = id
        self.body = body
        self.attributes = attributes
        self.handle = handle
        self.deliveries = deliveries

    @property
    def size(self) -> int:
        return len(self.body)

    def json(self) -> Any:
        """The body decoded as JSON, by orjson when installed (``ValueError`` on bad JSON).

        The fast way to start a per-message transformer: ``record = message.json()``.
        """
        return _loads(self.body)

    def __repr__(self) -> str:
        return f"Message(id={self.id!r}, size={len(self.body)})"


_RECORDS = attrgetter("records")


def count_records(messages: Iterable[Message]) -> int:
    """Records in ``messages`` (lines of blocks counted one by one), at C speed."""
    return sum(map(_RECORDS, messages))


@dataclass(slots=True, frozen=True)
class Rejection:
    """A message that cannot be written, with the reason (it goes to the error sink or back)."""

    message: Message
    reason: str
