"""Human units on the command line and in config files: sizes (``5MiB``) and durations (``30s``)."""

from __future__ import annotations

import re

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2, "gi": 1024**3, "gib": 1024**3,
}
_DURATION_UNITS = {
    "": 1.0, "s": 1.0, "sec": 1.0, "ms": 0.001, "us": 1e-6, "m": 60.0, "min": 60.0,
    "h": 3600.0, "d": 86400.0,
}
#: How sizes and durations are written, declared once (``ingest --help``, errors, README).
SIZE_FORMS = "5MiB, 512KB, 1GiB, or a bare number of bytes"
DURATION_FORMS = "500ms, 30s, 5m, 1h, or a bare number of seconds"
_NUMBER_UNIT = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")


def parse_size(value: str | int | float) -> int:
    """``'5MiB'`` -> 5242880, ``'512KB'`` -> 512000, ``1024`` -> 1024. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"size must not be negative: {value!r}")
        return int(value)
    match = _NUMBER_UNIT.match(value)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"not a size: {value!r} (use {SIZE_FORMS})")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_duration(value: str | int | float) -> float:
    """``'500ms'`` -> 0.5, ``'30s'`` -> 30.0, ``'5m'`` -> 300.0; a bare ``12`` or ``'12'`` is
    12.0 seconds (see DURATION_FORMS)."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative: {value!r}")
        return float(value)
    match = _NUMBER_UNIT.match(value)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _DURATION_UNITS:
        raise ValueError(f"not a duration: {value!r} (use {DURATION_FORMS})")
    return float(match.group(1)) * _DURATION_UNITS[unit]


def format_size(n: float) -> str:
    """Bytes for people: ``5.0 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
