"""Exceptions with a meaning the CLI and the pipeline act on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .message import Message


class IngestError(Exception):
    """Base class of every error parquet-ingestor raises on purpose."""


class ConfigError(IngestError):
    """Bad configuration: the CLI prints the message on one line and exits 2."""


class PluginError(IngestError):
    """A plugin could not be loaded, or two plugins claim the same component name."""


class PartialAckError(IngestError):
    """Some messages of an ack call failed; only ``failed`` should be retried."""

    def __init__(self, failed: Sequence[Message], reason: str) -> None:
        super().__init__(f"{len(failed)} message(s) not acknowledged: {reason}")
        self.failed = list(failed)
        self.reason = reason


class PartialCommitError(IngestError):
    """A commit set that is not atomic (one object at a time) committed only some files.

    ``errors`` maps the key of each file that did not commit (and was aborted) to its error;
    every other file of the set is committed. Only the failed files' messages are nacked.
    """

    def __init__(self, errors: Mapping[str, BaseException]) -> None:
        first = next(iter(errors.values()), None)
        super().__init__(f"{len(errors)} file(s) of the commit set failed: {first}")
        self.errors = dict(errors)


class Aborted(IngestError):
    """The pipeline was aborted (second signal): stop now, acknowledge nothing more."""


class RejectMessage(IngestError):  # noqa: N818 - reads well at the raise site
    """Raised by a transformer for one message that can never be processed."""
