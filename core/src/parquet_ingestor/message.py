"""The unit a source hands over and must later settle: a message, and the reason one is rejected."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_NO_ATTRIBUTES: Mapping[str, Any] = {}


@dataclass(slots=True, eq=False)
class Message:
    """One message from a source.

    ``body`` is the raw payload; ``attributes`` carries source metadata (SQS message id, sent
    timestamp, receive count, message attributes...); ``handle`` is whatever the source needs to
    settle it later (a receipt handle, a stream id). Messages compare by identity.
    """

    id: str
    body: bytes
    attributes: Mapping[str, Any] = field(default=_NO_ATTRIBUTES)
    handle: Any = None

    @property
    def size(self) -> int:
        return len(self.body)


@dataclass(slots=True, frozen=True)
class Rejection:
    """A message that cannot be written, with the reason (it goes to the error sink or back)."""

    message: Message
    reason: str
