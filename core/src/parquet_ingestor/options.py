"""Options a component declares once; the CLI, config files, validation and docs all read them.

A plugin lists its options as :class:`Option` values when it registers a component::

    register("sqs", "parquet_ingestor_sqs.source:SqsSource", options=[
        Option("queue_url", required=True, help="URL of the queue"),
        Option("wait_time", "duration", default="20s", min=0, max=20, help="long-poll wait"),
    ])

Values arrive as strings from ``--source-opt K=V`` and ``INGEST_*`` variables, or as native
TOML values from a config file; :func:`parse_options` turns both into typed values or raises
:class:`~parquet_ingestor.errors.ConfigError` with a one-line message naming the option.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ConfigError
from .units import parse_duration, parse_size

OptionType = Literal["str", "path", "int", "float", "bool", "size", "duration", "list", "map"]
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    """One setting of a component.

    ``type`` is one of ``str path int float bool size duration list map``: ``path`` is a local
    file or folder (relative to a config file's folder when it comes from one), ``size`` takes
    ``5MiB``, ``duration`` takes ``30s`` (parsed to seconds), ``list`` takes ``a,b,c`` and ``map``
    takes ``k=v,k2=v2``. The ``choices`` of an ``int`` or ``float`` option are words it accepts
    besides numbers (``workers``: a number or ``auto``). ``secret`` options (passwords, tokens) are never printed back: not by
    ``ingest plugins`` (listed as ``secret``), not in ``--json`` (``"secret": true``, no
    default), not in error messages (the value shows as ``****``). ``check`` validates a
    parsed value further (raise ``ValueError`` with the reason), wherever the value comes from.
    A ``map`` option with a ``prefix`` also collects ``PREFIXKEY=VALUE`` options, key kept
    verbatim: with ``prefix="catalog."``, ``catalog.s3.endpoint=URL`` adds
    ``{"s3.endpoint": "URL"}``.
    """

    name: str
    type: OptionType = "str"
    default: Any = None
    required: bool = False
    help: str = ""
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    secret: bool = False
    check: Callable[[Any], object] | None = None
    prefix: str | None = None

    def describe(self) -> str:
        """One line for ``ingest plugins`` and ``--help``."""
        parts: list[str] = [self.type]
        if self.choices:
            parts = ["|".join((*self._numeric(), *self.choices))]
        if self.secret:
            parts.append("secret")
        if self.required:
            parts.append("required")
        elif self.default is not None and not self.secret:
            shown = self.default
            if isinstance(shown, str) and shown.strip() != shown or shown == "":
                shown = repr(shown)
            parts.append(f"default {shown}")
        name = f"{self.name}, {self.prefix}KEY" if self.prefix else self.name
        return f"{name} ({', '.join(parts)}): {self.help}".rstrip(": ")

    def parse(self, value: Any, where: str) -> Any:
        """Convert one raw value (string or TOML value) to this option's type."""
        label = (f"--{self.name.replace('_', '-')}" if where == "pipeline"
                 else f"{where} option '{self.name}'")
        shown = "****" if self.secret else repr(value)  # a secret never reaches a message
        word = value.strip().lower() if isinstance(value, str) else None
        if self._numeric() and self.choices and word in self.choices:
            return word  # a word a number option takes ("auto")
        try:
            parsed = _convert(self.type, value)
        except (TypeError, ValueError) as exc:
            detail = f"not a valid {self.type}" if self.secret else str(exc)
            if self._numeric() and self.choices and not self.secret:
                words = " or ".join(self.choices)
                detail = f"expected a {'whole ' * (self.type == 'int')}number or {words}, " \
                         f"got {value!r}"
            raise ConfigError(f"{label}: {detail}") from None
        if self.choices is not None and not self._numeric() and parsed not in self.choices:
            raise ConfigError(f"{label}: {shown} is not one of {', '.join(self.choices)}")
        if isinstance(parsed, int | float) and not isinstance(parsed, bool):
            if self.min is not None and parsed < self.min:
                raise ConfigError(f"{label}: {shown} is below the minimum {_num(self.min)}")
            if self.max is not None and parsed > self.max:
                raise ConfigError(f"{label}: {shown} is above the maximum {_num(self.max)}")
        if self.check is not None and parsed is not None:
            try:
                self.check(parsed)
            except ValueError as exc:
                detail = "not a valid value" if self.secret else str(exc)
                raise ConfigError(f"{label}: {detail}") from None
        return parsed

    def _numeric(self) -> tuple[str, ...]:
        """``(type,)`` for a number option (its ``choices`` are words taken besides numbers)."""
        return (self.type,) if self.type in ("int", "float") else ()

    def masked(self, value: Any) -> Any:
        """``value`` as it may be shown: ``"****"`` for a set secret, else unchanged."""
        return "****" if self.secret and value not in (None, "") else value


def secret_values(declared: Sequence[Option], values: Mapping[str, Any]) -> list[str]:
    """The non-empty values of secret options, as text (to mask them wherever they appear)."""
    secret = {opt.name for opt in declared if opt.secret}
    return [str(v) for k, v in values.items() if _key(k) in secret and v not in (None, "")]


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``****``."""
    for value in sorted(secrets, key=len, reverse=True):
        if value:
            text = text.replace(value, "****")
    return text


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _convert(kind: OptionType, value: Any) -> Any:
    if kind in ("str", "path"):
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError(f"expected text, got {value!r}")
        return str(value)
    if kind == "int":
        if isinstance(value, bool | float):
            raise ValueError(f"expected a whole number, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a whole number, got {value!r}") from None
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
        if not math.isfinite(number):  # NaN passes every min/max comparison
            raise ValueError(f"expected a finite number, got {value!r}")
        return number
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"expected true or false, got {value!r}")
    if kind == "size":
        return parse_size(value)
    if kind == "duration":
        return parse_duration(value)
    if kind == "list":
        if isinstance(value, list | tuple):
            return [str(v) for v in value]
        return [part.strip() for part in str(value).split(",") if part.strip()]
    if kind == "map":
        if isinstance(value, Mapping):
            return {str(k): str(v) for k, v in value.items()}
        result: dict[str, str] = {}
        for part in str(value).split(","):
            if not part.strip():
                continue
            key, sep, val = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"expected key=value pairs separated by commas, got {value!r}")
            result[key.strip()] = val.strip()
        return result
    raise ValueError(f"unknown option type {kind!r}")


def parse_options(
    declared: Sequence[Option], raw: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """Validate ``raw`` against ``declared``: unknown, missing and malformed values raise ConfigError.

    ``where`` names the component in messages, e.g. ``"source 'sqs'"``.
    """
    by_name = {opt.name: opt for opt in declared}
    prefixed = [opt for opt in declared if opt.prefix and opt.type == "map"]
    extra: dict[str, dict[str, str]] = {}
    rest: dict[str, Any] = {}
    for name, value in raw.items():
        owner = next((o for o in prefixed if name.strip().startswith(o.prefix or "")), None)
        if owner is not None and name.strip() != owner.prefix:
            extra.setdefault(owner.name, {})[name.strip()[len(owner.prefix or ""):]] = str(value)
        else:
            rest[name] = value
    unknown = [name for name in rest if _key(name) not in by_name]
    if unknown:
        known = ", ".join(sorted(by_name)) or "none"
        raise ConfigError(f"{where} has no option '{unknown[0]}' (known options: {known})")
    values: dict[str, Any] = {}
    given = {_key(name): value for name, value in rest.items()}
    for opt in declared:
        if opt.name in extra:
            whole = opt.parse(given[opt.name], where) if opt.name in given else {}
            values[opt.name] = {**whole, **extra[opt.name]}
        elif opt.name in given:
            values[opt.name] = opt.parse(given[opt.name], where)
        elif opt.required:
            raise ConfigError(f"{where} needs option '{opt.name}' ({opt.help or opt.type})")
        else:
            values[opt.name] = opt.parse(opt.default, where) if opt.default is not None else None
    return values


def _key(name: str) -> str:
    return name.strip().replace("-", "_")


def split_pairs(pairs: Iterable[str], flag: str) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; a pair without ``=`` is a ConfigError."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} expects KEY=VALUE, got {pair!r}")
        result[key.strip()] = value
    return result
