"""Values read again from the JSON lines a table was parsed from, when parsing lost something:
an integer's digits beyond 2**53 (read as a double), a number's spelling (``2.50``, ``1e3``).

Only rows at risk are read again (never every row of a clean batch): a value is looked up under
the keys its column was read from (with lower-cased names, the keys as the JSON spells them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence


class JsonNumber(str):
    """A JSON number's text exactly as the line spells it (``2.50``, ``1e3``, ``-0``)."""

    __slots__ = ()


class RawLines:
    """Row position -> the JSON line it came from, and column -> the keys it was read from."""

    __slots__ = ("_keys", "line")

    def __init__(self, line: Callable[[int], bytes | None],
                 keys: Mapping[str, Sequence[str]] | None = None) -> None:
        self.line = line
        self._keys = keys or {}

    def renamed(self, keys: Mapping[str, Sequence[str]]) -> RawLines:
        """The same lines, for a table whose columns were renamed (new name -> old keys)."""
        return RawLines(self.line, {name: [k for old in olds for k in self.keys(old)]
                                    for name, olds in keys.items()})

    def keys(self, name: str) -> Sequence[str]:
        return self._keys.get(name, (name,))

    def values(self, name: str, positions: Sequence[int], text: bool = False
               ) -> dict[int, object]:
        """{position: the value under column ``name`` in that row's line}: numbers as Python
        ints and floats, or with ``text`` every number as its :class:`JsonNumber`. A row whose
        line is gone, is not an object, or holds no value there is left out."""
        keys = self.keys(name)
        decode = _AS_TEXT.decode if text else _PLAIN.decode
        found: dict[int, object] = {}
        for pos in positions:
            line = self.line(pos)
            if line is None:
                continue
            try:
                row = decode(bytes(line).decode())
            except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                continue
            if not isinstance(row, dict):
                continue
            for key in keys:
                value = row.get(key)
                if value is not None:
                    found[pos] = value
                    break
        return found


_PLAIN = json.JSONDecoder()
_AS_TEXT = json.JSONDecoder(parse_float=JsonNumber, parse_int=JsonNumber)


def positions_raw(lines: Sequence[bytes], rows: Sequence[int]) -> RawLines:
    """The :class:`RawLines` of a table whose row ``i`` came from ``lines[rows[i]]``."""
    return RawLines(lambda pos: lines[rows[pos]])
