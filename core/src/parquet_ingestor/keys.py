"""Object keys from templates: strftime codes of the partition time plus ``{placeholders}``.

The default is the seed layout, ``%Y/%m/%d/%H/{unix_ns}-{random}.{ext}`` in UTC. Placeholders:

* ``{unix_ns}`` the write time in nanoseconds, ``{random}`` 8 random hex digits, ``{uuid}``
* ``{ext}`` the encoder's file extension, ``{worker}`` the flush worker number
* ``{field:NAME}`` the value of record field NAME (a dynamic partition), made safe for a path

Hive style works: ``year=%Y/month=%m/day=%d/hour=%H/{uuid}.{ext}``. Field values are escaped
(``/``, ``..``, ``%``, control characters) and bounded in length, so no record can make a key
escape the sink's prefix or root.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .errors import ConfigError

DEFAULT_TEMPLATE = "%Y/%m/%d/%H/{unix_ns}-{random}.{ext}"
NULL_VALUE = "__null__"
MAX_VALUE_LENGTH = 100
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PARTIAL_ESCAPE = re.compile(r"%[0-9A-F]?$")
_SIMPLE = {"unix_ns", "random", "uuid", "ext", "worker"}
_UNIQUE = {"random", "uuid"}  # {unix_ns} alone can repeat across workers
# strftime codes from the finest to the coarsest grain they need
_GRAINS = (("second", "%S%s%T%X%c"), ("minute", "%M%R"), ("hour", "%H%I%p"),
           ("day", "%d%j%a%A%e%D%F%x%u%w%U%W%V%G"), ("month", "%m%b%B%h"), ("year", "%Y%y%C"))


def sanitize(value: Any) -> str:
    """Make a record value safe as one path segment: percent-escape, never ``.``/``..``, bounded.

    Letters, digits and ``-_.+=@,`` stay as they are; everything else (``/``, ``\\``, ``%``,
    NUL and other control characters, spaces, non-ASCII) is percent-encoded, Hive style. Values
    longer than 100 characters are cut and suffixed with a hash so distinct values stay distinct.
    """
    if value is None:
        return NULL_VALUE
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    safe = quote(text, safe="-_.+=@,", errors="surrogatepass")  # lone surrogates from JSON
    if not safe.strip("."):
        safe = safe.replace(".", "%2E") or NULL_VALUE
    if len(safe) > MAX_VALUE_LENGTH:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        cut = _PARTIAL_ESCAPE.sub("", safe[: MAX_VALUE_LENGTH - 13])  # never half an escape
        safe = f"{cut}~{digest}"
    return safe


@dataclass(frozen=True)
class KeyTemplate:
    """A parsed key template; :meth:`render` makes one key per file. A bad template raises
    :class:`ConfigError` with the reason; callers name the option it came from."""

    template: str = DEFAULT_TEMPLATE

    def __post_init__(self) -> None:
        names = _PLACEHOLDER.findall(self.template)
        for name in names:
            if name not in _SIMPLE and not (name.startswith("field:") and name[6:]):
                raise ConfigError(
                    f"unknown placeholder {{{name}}} "
                    "(use {unix_ns} {random} {uuid} {ext} {worker} {field:NAME})")
        if not _UNIQUE & set(names):
            raise ConfigError("must contain {uuid} or {random} "
                              "so that keys never collide across workers and processes")
        if self.template.startswith("/") or "//" in self.template:
            raise ConfigError("must be relative, without empty path segments")
        try:
            time.strftime(self.template)
        except ValueError as exc:
            raise ConfigError(f"bad strftime code: {exc}") from None
        try:  # a sample key: a template that climbs out (``../{uuid}.{ext}``) fails now
            self.render(datetime(2024, 1, 2, 3, 4, 5), "ext", dict.fromkeys(self.fields, "v"))
        except ValueError:
            raise ConfigError(
                "must stay inside the sink's prefix or root: no '.' or '..' path segments "
                f"and no trailing '/' ({self.template!r})") from None

    @property
    def fields(self) -> tuple[str, ...]:
        """Record fields the template partitions on, in order."""
        return tuple(n[6:] for n in _PLACEHOLDER.findall(self.template) if n.startswith("field:"))

    @property
    def time_unit(self) -> str:
        """The finest time grain the template uses: events are grouped at that grain."""
        codes = set(re.findall(r"%(.)", self.template))
        for unit, letters in _GRAINS:
            if codes & set(letters.replace("%", "")):
                return unit
        return "year"

    def render(
        self,
        when: datetime,
        ext: str,
        fields: Mapping[str, Any] | None = None,
        worker: int = 0,
    ) -> str:
        """One key: ``when`` fills the strftime codes (UTC), placeholders are filled and escaped."""
        values = fields or {}
        parts: list[str] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(self.template):
            parts.append(when.strftime(self.template[pos:match.start()]))
            parts.append(self._fill(match.group(1), ext, values, worker))
            pos = match.end()
        parts.append(when.strftime(self.template[pos:]))
        key = "".join(parts)
        return check_key(key)

    @staticmethod
    def _fill(name: str, ext: str, fields: Mapping[str, Any], worker: int) -> str:
        if name == "unix_ns":
            return str(time.time_ns())
        if name == "random":
            return secrets.token_hex(4)
        if name == "uuid":
            return uuid.uuid4().hex
        if name == "ext":
            return ext
        if name == "worker":
            return str(worker)
        return sanitize(fields.get(name[6:]))


def check_key(key: str) -> str:
    """Refuse keys that are absolute or climb out of the prefix (defence in depth)."""
    segments = key.split("/")
    if key.startswith("/") or any(s in ("", ".", "..") for s in segments) or "\x00" in key:
        raise ValueError(f"unsafe key {key!r}")
    return key
