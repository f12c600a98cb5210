"""The "one place" promise, checked on real runs: random drifting JSON lines in, and a checker that
maps every input line to where it ended (Parquet rows read back with pyarrow, or the error sink).

The promise: every line ends in exactly one place, written once with every value exactly (only the
conversions of docs/types.md), or in the error sink with its raw line, its own ``FILE:LINE`` id and
a reason. The checker never asks *which* of the two happened: when flush workers race, a new
field's column type depends on which batch came first, so a value may be stored in one run and
rejected in the next. It asks that each line is in one place, and that a stored value equals its
input under a documented conversion for the column's type it landed in.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# ---------------------------------------------------------------------------------- generator

BIG = [2**53 + 1, -(2**53) - 1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1, 2**64, -(2**63) - 1,
       10**37, 10**38 - 1, 10**38, 12345678901234567890123]
TEXTS = ["hello", "2024-05-01", "2024-05-01T01:02:03", "01:02:03", "", " ", "null", "true", "42",
         "1.5", "ünïcødé ✓", "a\u0000b", "line\nbreak", "tab\t", '"quoted"', "back\\slash",
         "😀" * 3, "x" * 300, "NaN", "-0"]
NAMES = ["a", "b", "n", "val", "Name", "name", "NAME", "ключ", "ü", "日付", "x y", "e.f",
         "camelCase", "camelcase", "tags", "ctx", "amount", "when", "flag", "big", "deep", "z"]
CATS: list[Any] = ["a", "b", "A", "a/b", "..", "ü", "x" * 150, "", None, 3, True, 1.5, {"o": 1}]
BROKEN = ["not json", "[1,2]", "null", '{"lid": %d, ', '"str"', "42"]


def instant(r: random.Random) -> str:
    """An ISO-8601 instant with a zone, in the spellings Arrow accepts, some too precise for us."""
    base = (f"{r.randint(1970, 2030):04d}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"
            f"T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}")
    frac = r.choice(["", "", ".1", ".123", ".123456", ".1234567", ".123456789", ".000", ".5"])
    return base + frac + r.choice(["Z", "Z", "+02:00", "-05:30", "+0200", "+00:00", "-0000"])


def scalar(r: random.Random) -> Any:
    """Any JSON scalar the other kinds use: ints, floats, text, bools, null, instants, big ints."""
    k = r.randint(0, 6)
    if k == 0:
        return r.randint(-1000, 1000)
    if k == 1:
        return r.choice([1.5, -0.25, 3.0, 1e300, 0.1, 2.5e-8])
    if k == 2:
        return r.choice(TEXTS)
    if k == 3:
        return r.choice([True, False])
    if k == 4:
        return None
    return instant(r) if k == 5 else r.choice(BIG)


class Field:
    """One field of the stream: appears at line ``start``, drifts from its ``kind``'s early
    values to its late ones at line ``switch``, present in a ``presence`` share of lines."""

    def __init__(self, r: random.Random, name: str, n: int) -> None:
        self.r, self.name = r, name
        self.start = r.choice([0, 0, r.randint(1, n), n // 2, n - 3])
        self.switch = r.randint(0, n)
        self.presence = r.choice([1.0, 1.0, 0.8, 0.3, 0.05])
        self.kind = r.choice(KINDS)

    def value(self, i: int) -> tuple[bool, Any]:
        """(present, value) of line ``i``."""
        if i < self.start or self.r.random() > self.presence:
            return False, None
        return True, getattr(self, "v_" + self.kind)(i >= self.switch)

    def v_int_float(self, late: bool) -> Any:
        r = self.r
        return r.choice([float(r.randint(-5, 5)), 1.5, -2.75, r.randint(0, 9)]) if late else \
            r.randint(-10**6, 10**6)

    def v_int_string(self, late: bool) -> Any:
        return self.r.choice([str(self.r.randint(0, 99)), "abc", 7]) if late else \
            self.r.randint(-10**6, 10**6)

    def v_instant_text(self, late: bool) -> Any:
        return self.r.choice(TEXTS) if late and self.r.random() < 0.5 else instant(self.r)

    def v_instant(self, late: bool) -> Any:
        return instant(self.r)

    def v_bool(self, late: bool) -> Any:
        return self.r.choice([True, 1, "true", None] if late else [True, False])

    def v_null_then(self, late: bool) -> Any:
        return self.r.choice([self.r.randint(0, 9), "s", {"k": 1}, [1, 2], True, 2.5]) \
            if late else None

    def v_empty_then(self, late: bool) -> Any:
        return self.r.choice([[1, 2], ["a"], {"k": 1, "z": "t"}, [{"q": 1}], [], {}]) if late \
            else self.r.choice([[], {}])

    def v_empty_list_then(self, late: bool) -> Any:
        return self.r.choice([[1, 2], [None, 3], [], [4]]) if late else []

    def v_empty_obj_then(self, late: bool) -> Any:
        return self.r.choice([{"k": 1}, {}, {"k": 2, "m": "x"}, {"m": None}]) if late else {}

    def v_big(self, late: bool) -> Any:
        if late:
            return self.r.choice([*BIG, 5, -7])
        return self.r.choice([self.r.randint(-100, 100), self.r.choice(BIG[:2])])

    def v_big_first(self, late: bool) -> Any:
        return self.r.choice([*BIG, 5, -7, 2**53, 2**53 + 2])

    def v_float(self, late: bool) -> Any:
        return self.r.choice([0.1, -0.0, 1e300, 5e-324, 1.7976931348623157e308, 1.0, 2.5,
                              123456789.123456789, 1e-7, 3.0, 2**53 + 0.0, 9007199254740993.0])

    def v_float_then_int(self, late: bool) -> Any:
        return self.r.choice([3, 2**53, 2**53 + 1, -(2**60), 2**64]) if late else \
            self.r.choice([0.5, 1.25])

    def v_nested_grow(self, late: bool) -> Any:
        r = self.r
        d: dict[str, Any] = {"a": r.randint(0, 9)}
        if late:
            d["b"] = {"c": r.randint(0, 9)}
            if r.random() < 0.5:
                d["b"]["d"] = {"e": r.choice(TEXTS), "f": [1, 2]}
            if r.random() < 0.3:
                d["g"] = r.choice([True, None, "x"])
        elif r.random() < 0.5:
            d["b"] = {"c": r.randint(0, 9)}
        return d

    def v_list_obj(self, late: bool) -> Any:
        r, out = self.r, []
        for _ in range(r.randint(0, 3)):
            o: dict[str, Any] = {"x": r.randint(0, 9)}
            if late and r.random() < 0.6:
                o["y"] = r.choice(["s", "t"])
            if late and r.random() < 0.3:
                o["z"] = {"w": r.randint(0, 3)}
            out.append(o)
        return out

    def v_deep(self, late: bool) -> Any:
        v: Any = {"leaf": 1, "new": "n"} if late else self.r.randint(0, 9)
        for _ in range(self.r.choice([3, 10, 25, 30, 31, 32, 33, 40])):
            v = {"d": v} if self.r.random() < 0.7 else [v]
        return v

    def v_unicode_key(self, late: bool) -> Any:
        return {"ключ": self.r.randint(0, 9), "日本": "語", "é": late}

    def v_mixed(self, late: bool) -> Any:
        return scalar(self.r)

    def v_empty_obj(self, late: bool) -> Any:
        return {}

    def v_list_scalar_drift(self, late: bool) -> Any:
        return self.r.choice([[1.5], ["a"], [None], [2]]) if late else [self.r.randint(0, 9)]

    def v_nested_instant(self, late: bool) -> Any:
        if late:
            return {"when": self.r.choice(TEXTS), "n": 1, "extra": instant(self.r)}
        return {"when": instant(self.r), "n": self.r.randint(0, 3)}

    def v_obj_then_scalar(self, late: bool) -> Any:
        return self.r.choice(["str", 3, [1]]) if late else {"k": 1}

    def v_str_field(self, late: bool) -> Any:
        return self.r.choice(TEXTS)

    def v_instant_epoch(self, late: bool) -> Any:
        return self.r.choice([1700000000, 1700000000123, 1.7e9, 1700000000.5]) if late else \
            instant(self.r)


KINDS = sorted(n[2:] for n in vars(Field) if n.startswith("v_"))


def generate(seed: int, n: int, lid_base: int = 0) -> list[str]:
    """``n`` JSON lines of 2-9 drifting fields plus ``lid`` (``lid_base + i``, unique per line),
    ``ts`` (instants, epochs, mixed or missing) and ``cat``; about 1% are not JSON objects."""
    r = random.Random(seed)
    fields = [Field(r, name, n) for name in r.sample(NAMES, r.randint(2, 9))]
    ts_kind = r.choice(["instant", "epoch", "mixed", "missing"])
    lines = []
    for i in range(1, n + 1):
        rec: dict[str, Any] = {"lid": lid_base + i}
        if ts_kind != "missing" or r.random() < 0.5:
            if ts_kind == "epoch":
                rec["ts"] = r.choice([1700000000 + i, 1700000000000 + i * 1000])
            elif ts_kind == "mixed":
                rec["ts"] = r.choice([instant(r), 1700000000, "bad", None, "2024-05-01",
                                      "2024-05-01T01:02:03"])
            else:
                rec["ts"] = instant(r)
        if r.random() < 0.7:
            rec["cat"] = r.choice(CATS[:4]) if r.random() < 0.8 else r.choice(CATS)
        for f in fields:
            present, v = f.value(i)
            if present:
                rec[f.name] = v
        line = json.dumps(rec, ensure_ascii=r.random() < 0.3,
                          separators=r.choice([(",", ":"), (", ", ": ")]))
        if r.random() < 0.01:
            broken = r.choice(BROKEN)
            line = broken % (lid_base + i) if "%d" in broken else broken
        lines.append(line)
    return lines


# ---------------------------------------------------------------------------------- checker


class RawFloat(float):
    """A JSON float that remembers how the line spelled it (``2.50``, ``1e3``)."""

    text: str

    def __new__(cls, s: str) -> RawFloat:
        o = super().__new__(cls, s)
        o.text = s
        return o


def loads(s: str) -> Any:
    """JSON with floats as :class:`RawFloat`."""
    return json.loads(s, parse_float=RawFloat)


INSTANT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
                     r"(Z|[+-]\d{2}(?::?\d{2})?)$")
UNIT_DIGITS = {"s": 0, "ms": 3, "us": 6, "ns": 9}


def parse_instant(s: str, unit: str) -> tuple[dt.datetime | None, str]:
    """The UTC instant text ``s`` stands for in a ``unit`` column, or (None, why not)."""
    m = INSTANT.match(s)
    if not m:
        return None, "not an instant with a zone"
    y, mo, d, h, mi, sec, frac, zone = m.groups()
    digits = (frac or ".")[1:]
    if len(digits.rstrip("0")) > UNIT_DIGITS[unit]:
        return None, "more fractional digits than the unit"
    us = int((digits + "000000")[:6]) if digits else 0
    off = dt.timedelta(0)
    if zone != "Z":
        z = zone[1:].replace(":", "")
        off = (-1 if zone[0] == "-" else 1) * dt.timedelta(hours=int(z[:2]),
                                                           minutes=int(z[2:4] or 0))
    try:
        t = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec or 0), us,
                        tzinfo=dt.timezone(off))
    except ValueError:
        return None, "no such date"
    return t.astimezone(dt.UTC), ""


def is_empty(v: Any) -> bool:
    """No type to give: null, ``[]``, ``{}``, or objects of only such (types.md: no column)."""
    if isinstance(v, dict):
        return all(is_empty(x) for x in v.values())
    return v is None or v == []


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def same_number(a: Any, b: Any) -> bool:
    """Exactly the same number (an int and an integral float may stand for each other)."""
    return is_number(a) and is_number(b) and decimal.Decimal(a) == decimal.Decimal(b) and (
        str(float(a)) == str(float(b)))


def json_eq(inp: Any, out: Any, lenient: bool = False) -> bool:
    """``out`` (JSON read back) is ``inp``: the same numbers exactly (types.md: "its numbers
    re-printed", so 2 may come back as 2.0), bool is not int, a struct may carry fields other
    lines added (as null). ``lenient``: a leaf may also be converted as a typed nested column
    converts it (fastparquet's JSON text of a struct): a scalar as its JSON text, ``{}``/``[]``
    as null."""
    if isinstance(inp, dict):
        return isinstance(out, dict) and set(inp) <= set(out) and all(
            json_eq(inp[k], out[k], lenient) for k in inp) and all(
            out[k] is None for k in out if k not in inp) or (lenient and out is None
                                                             and is_empty(inp))
    if isinstance(inp, list):
        return isinstance(out, list) and len(inp) == len(out) and all(
            json_eq(a, b, lenient) for a, b in zip(inp, out, strict=True)) or (
            lenient and out is None and inp == [])
    if isinstance(inp, bool) or isinstance(out, bool):
        return (type(inp) is type(out) and inp == out) or (
            lenient and out == ("true" if inp else "false"))
    if is_number(inp) or is_number(out):
        if is_number(inp) and is_number(out):  # re-printed: 2 may read back as 2.0, exactly
            return same_number(inp, out)
        return lenient and isinstance(out, str) and out in (
            getattr(inp, "text", None), str(inp), json.dumps(inp))
    return type(inp) is type(out) and inp == out


def json_text(v: Any) -> str:
    """A scalar's JSON text as the line spells it (``2.50`` stays ``2.50``)."""
    if isinstance(v, RawFloat):
        return v.text
    return json.dumps(v)


@dataclass
class Checker:
    """Compares input records with rows read back; ``problems`` lists every mismatch."""

    time_fields: frozenset[str] = frozenset()
    lower: bool = False  # compat=s3tables: top-level names in lower case
    fastparquet: bool = False  # nested values and decimals are stored as text
    problems: list[str] = field(default_factory=list)

    def fail(self, path: str, inp: Any, out: Any, typ: pa.DataType, why: str = "") -> None:
        self.problems.append(f"{path}: input {_short(inp)} stored as {_short(out)} in a {typ} "
                             f"column{': ' + why if why else ''}")

    def value(self, inp: Any, out: Any, typ: pa.DataType, path: str, top: str = "") -> None:
        """``out`` (stored in a ``typ`` column) is ``inp`` under a types.md conversion; ``top``
        names the top-level field (empty inside structs and lists)."""
        typ = getattr(typ, "storage_type", typ)  # arrow.json extension: its text
        if inp is None or (out is None and is_empty(inp)):
            if out is not None:  # [] and {} without a type are stored as null
                self.fail(path, inp, out, typ)
            return
        if out is None:
            return self.fail(path, inp, out, typ, "value lost")
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            self.text(inp, out, typ, path)
        elif pa.types.is_boolean(typ):
            if not (isinstance(inp, bool) and out == inp):
                self.fail(path, inp, out, typ)
        elif pa.types.is_integer(typ) or pa.types.is_decimal(typ):
            if not (is_number(inp) and float(inp).is_integer() and
                    decimal.Decimal(inp) == decimal.Decimal(out)):
                self.fail(path, inp, out, typ)
        elif pa.types.is_floating(typ):
            exact = is_number(inp) and (isinstance(inp, float) or abs(inp) <= 2**53)
            if not (exact and same_number(float(inp), out)):
                self.fail(path, inp, out, typ)
        elif pa.types.is_timestamp(typ):
            self.timestamp(inp, out, typ, path, top)
        elif pa.types.is_struct(typ):
            if not isinstance(inp, dict):
                return self.fail(path, inp, out, typ)
            fields = {typ.field(i).name: typ.field(i).type for i in range(typ.num_fields)}
            for k, v in inp.items():
                if k in fields:
                    self.value(v, out.get(k), fields[k], f"{path}.{k}")
                elif not is_empty(v):
                    self.fail(f"{path}.{k}", v, None, typ, "field dropped")
            for k in fields.keys() - inp.keys():
                if out.get(k) is not None:
                    self.fail(f"{path}.{k}", None, out.get(k), fields[k], "absent but stored")
        elif pa.types.is_list(typ) or pa.types.is_large_list(typ):
            if not isinstance(inp, list) or len(inp) != len(out):
                return self.fail(path, inp, out, typ)
            for j, (a, b) in enumerate(zip(inp, out, strict=True)):
                self.value(a, b, typ.value_type, f"{path}[{j}]")
        else:
            self.fail(path, inp, out, typ, "unexpected column type")

    def text(self, inp: Any, out: str, typ: pa.DataType, path: str) -> None:
        """Into a string column: text as is, a number or bool as its JSON text, an object or
        array as compact JSON; with fastparquet, also nested columns and decimals as text."""
        if isinstance(inp, str):
            ok = out == inp
        elif isinstance(inp, bool) or is_number(inp):
            ok = out == json_text(inp) or (self.fastparquet and is_number(inp) and float(
                inp).is_integer() and out == str(decimal.Decimal(int(inp))))  # a decimal
        else:
            try:
                stored = loads(out)
            except ValueError:
                return self.fail(path, inp, out, typ, "not JSON text")
            ok = json_eq(inp, stored, lenient=self.fastparquet) and (
                self.fastparquet or out == json.dumps(stored, ensure_ascii=False,
                                                      separators=(",", ":")))
        if not ok:
            self.fail(path, inp, out, typ)

    def timestamp(self, inp: Any, out: Any, typ: pa.DataType, path: str, top: str) -> None:
        """An instant as UTC in the column's unit; an epoch number only in a time field."""
        if isinstance(inp, str):
            want, why = parse_instant(inp, typ.unit)
            if want is None:
                self.fail(path, inp, out, typ, why)
            elif out != want:
                self.fail(path, inp, out, typ, f"expected {want}")
        elif is_number(inp) and top in self.time_fields:
            secs = inp / 1000 if inp > 1e11 else inp
            want = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=secs)
            if abs((out - want).total_seconds()) > 1e-6:
                self.fail(path, inp, out, typ, f"expected {want}")
        else:
            self.fail(path, inp, out, typ)

    def row(self, lid: int, rec: dict[str, Any], row: dict[str, Any], schema: pa.Schema) -> None:
        """One input record against the one row written for it."""
        items = list(rec.items())
        if self.lower:  # colliding names are one column; both holding a value is rejected
            groups: dict[str, list[Any]] = {}
            for k, v in items:
                groups.setdefault(k.lower(), []).append(v)
            items = []
            for k, vs in groups.items():
                held = [v for v in vs if v is not None]
                if len(held) > 1:
                    self.problems.append(f"line {lid} {k}: colliding names {vs} written")
                items.append((k, held[0] if held else None))
        for k, v in items:
            if k in schema.names:
                self.value(v, row.get(k), schema.field(k).type, f"line {lid} {k}", k)
            elif not is_empty(v):
                self.problems.append(f"line {lid} {k}: no column, input {_short(v)} lost")
        for k in set(schema.names) - {k for k, _ in items}:
            if row.get(k) is not None:
                self.problems.append(f"line {lid} {k}: absent but stored {_short(row[k])}")


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 160 else s[:160] + "…"


def read_rows(out: Path) -> list[tuple[pa.Schema, dict[str, Any]]]:
    """Every row of every committed Parquet file under ``out``, with its file's schema."""
    rows = []
    for path in sorted(out.rglob("*.parquet")) if out.exists() else []:
        if not path.name.startswith("."):
            table = pq.read_table(path)
            rows += [(table.schema, r) for r in table.to_pylist()]
    return rows


def read_errors(err: Path) -> list[dict[str, Any]]:
    """Every record of the error sink under ``err``."""
    found: list[dict[str, Any]] = []
    for path in sorted(err.rglob("*.jsonl")) if err.exists() else []:
        if not path.name.startswith("."):
            found += [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return found


def check_run(inputs: list[tuple[Path, list[str]]], out: Path, err: Path,
              checker: Checker) -> dict[str, int]:
    """Each input line (``lid`` unique across inputs) is one row or one error record, with its
    raw line, ``FILE:LINE`` id and a reason; nothing else is in the output. Counts found."""
    problem = checker.problems.append
    rows, errors = read_rows(out), read_errors(err)
    by_lid: dict[Any, list[tuple[pa.Schema, dict[str, Any]]]] = {}
    for schema, r in rows:
        by_lid.setdefault(r.get("lid"), []).append((schema, r))
    by_id: dict[str, list[dict[str, Any]]] = {}
    for e in errors:
        by_id.setdefault(e.get("message_id", ""), []).append(e)
    for path, lines in inputs:
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            mid = f"{path}:{i}"
            errs = by_id.pop(mid, [])
            try:
                rec = loads(line)
            except ValueError:
                rec = None
            lid = rec.get("lid") if isinstance(rec, dict) else None
            written = by_lid.pop(lid, []) if lid is not None else []
            if len(errs) + len(written) != 1:
                problem(f"{mid}: in {len(errs)} error records and {len(written)} rows: "
                        f"{line[:200]} {[e.get('reason') for e in errs]}")
            for e in errs:
                if e.get("body") != line:
                    problem(f"{mid}: error body {e.get('body')!r} is not the line {line!r}")
                if not e.get("reason"):
                    problem(f"{mid}: error record without a reason")
            for schema, r in written:
                assert isinstance(rec, dict) and isinstance(lid, int)
                checker.row(lid, rec, r, schema)
    for mid in sorted(by_id):
        problem(f"error record with an id of no input line: {mid}")
    for lid in by_lid:
        problem(f"row with a lid of no input line: {lid}")
    return {"rows": len(rows), "errors": len(errors)}


SUMMARY = re.compile(r"stopped \(drained\): (\d+) messages, \d+ files, \d+ rows, \d+ bytes, "
                     r"\d+ rejected, (\d+) nacked")


def run_problems(stderr: str, returncode: int, lines: list[str]) -> list[str]:
    """A run exits 0 with no traceback, and its summary counts every non-blank line and no
    nack."""
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    found = [] if returncode == 0 else [f"exit {returncode}: {last}"]
    if "Traceback" in stderr:
        found.append("a traceback in stderr")
    m = SUMMARY.search(last)
    if not m:
        found.append(f"no summary as the last log line: {last[:300]}")
    else:
        if int(m.group(1)) != sum(1 for x in lines if x.strip()):
            found.append(f"summary: {m.group(1)} messages for {len(lines)} lines")
        if int(m.group(2)):
            found.append(f"summary: {m.group(2)} nacked")
    return found
