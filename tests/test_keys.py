"""Key templates: the seed layout, Hive style, placeholders, validation and hostile field values."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import unquote

import pytest
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.keys import DEFAULT_TEMPLATE, MAX_VALUE_LENGTH, KeyTemplate, sanitize

WHEN = datetime(2024, 5, 1, 5, 12, 49, 322000, tzinfo=UTC)


def test_default_is_the_seed_layout() -> None:
    key = KeyTemplate().render(WHEN, "parquet")
    match = re.fullmatch(r"2024/05/01/05/(\d+)-([0-9a-f]{8})\.parquet", key)
    assert match, key
    assert KeyTemplate().template == DEFAULT_TEMPLATE
    assert KeyTemplate().time_unit == "hour"
    assert KeyTemplate().fields == ()


def test_unix_ns_is_the_write_time_in_ns() -> None:
    import time

    before = time.time_ns()
    key = KeyTemplate().render(WHEN, "jsonl")
    after = time.time_ns()
    ns = int(key.split("/")[-1].split("-")[0])
    assert before <= ns <= after


def test_partition_time_is_rendered_as_given_in_utc() -> None:
    # the pipeline passes UTC times; a day boundary must not shift
    when = datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert KeyTemplate().render(when, "jsonl").startswith("2023/12/31/23/")
    # an aware non-UTC time is rendered in its own wall clock: callers must give UTC
    other = (when + timedelta(hours=1)).astimezone(timezone(timedelta(hours=2)))
    assert KeyTemplate().render(other.astimezone(UTC), "jsonl").startswith("2024/01/01/00/")


def test_hive_style() -> None:
    tpl = KeyTemplate("year=%Y/month=%m/day=%d/hour=%H/{uuid}.{ext}")
    key = tpl.render(WHEN, "jsonl.gz")
    assert re.fullmatch(r"year=2024/month=05/day=01/hour=05/[0-9a-f]{32}\.jsonl\.gz", key), key
    assert tpl.time_unit == "hour"


@pytest.mark.parametrize(("template", "unit"), [
    ("%Y/{uuid}", "year"), ("%Y/%m/{uuid}", "month"), ("%Y/%m/%d/{uuid}", "day"),
    ("%Y/%m/%d/%H/%M/{uuid}", "minute"), ("dt=%F/{uuid}", "day"), ("{uuid}", "year"),
])
def test_time_unit_is_the_finest_code(template: str, unit: str) -> None:
    assert KeyTemplate(template).time_unit == unit


def test_field_placeholder_and_worker() -> None:
    tpl = KeyTemplate("country={field:country}/type={field:type}/%Y/{worker}-{random}.{ext}")
    assert tpl.fields == ("country", "type")
    key = tpl.render(WHEN, "jsonl", {"country": "GB", "type": "page view"}, worker=3)
    assert re.fullmatch(r"country=GB/type=page%20view/2024/3-[0-9a-f]{8}\.jsonl", key), key
    missing = tpl.render(WHEN, "jsonl", {}, worker=0)
    assert missing.startswith("country=__null__/type=__null__/")


@pytest.mark.parametrize("template", ["%Y/%m/{ext}", "static.jsonl", "{worker}/{field:x}.{ext}"])
def test_template_without_unique_placeholder_is_refused(template: str) -> None:
    with pytest.raises(ConfigError, match="uuid"):
        KeyTemplate(template)


@pytest.mark.parametrize("name", ["{nope}", "{field:}", "{UUID}", "{}"])
def test_unknown_placeholder_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown placeholder") as info:
        KeyTemplate(f"%Y/{name}/{{uuid}}")
    assert name in str(info.value)


@pytest.mark.parametrize("template", ["/%Y/{uuid}", "%Y//{uuid}"])
def test_absolute_or_empty_segments_refused(template: str) -> None:
    with pytest.raises(ConfigError):
        KeyTemplate(template)


HOSTILE = [
    "..", ".", "../", "../../etc/passwd", "/etc/passwd", "%2e%2e", "%2e%2e%2fetc", "a\x00b",
    "\x00", "...", "a/../b", "\\..\\..\\windows", "..%2f..", "x" * 10_000, "é" * 10_000,
    "日本語/テキスト", "😀" * 3000, " ", "\n", "\r\n..", "~", "", "CON", "a" * 85 + "/" + "b" * 50,
    json.loads('"\\ud800"'), json.loads('"x\\udfff/.."'),
]


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v[:12]))
def test_hostile_values_never_escape(value: str) -> None:
    safe = sanitize(value)
    assert safe not in ("", ".", "..")
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert len(safe) <= MAX_VALUE_LENGTH
    assert not re.search(r"%(?![0-9A-F]{2})", safe), f"broken percent escape in {safe!r}"
    key = KeyTemplate("p={field:v}/%Y/{uuid}.{ext}").render(WHEN, "jsonl", {"v": value})
    segments = key.split("/")
    assert not key.startswith("/")
    assert ".." not in segments and "." not in segments and "" not in segments
    assert len(segments) == 3
    assert len(key) < 200


def test_short_values_round_trip_through_percent_decoding() -> None:
    for value in ["GB", "page view", "a/b", "100%", "é", "x=y", "..."]:
        assert unquote(sanitize(value)) == value


def test_long_values_stay_distinct() -> None:
    base = "z" * 5000
    values = [base + str(i) for i in range(500)] + [str(i) + base for i in range(500)]
    assert len({sanitize(v) for v in values}) == len(values)


def test_non_string_values() -> None:
    assert sanitize(None) == "__null__"
    assert sanitize(42) == "42"
    assert sanitize(True) == "True"
    assert sanitize(WHEN) == "2024-05-01T05%3A12%3A49.322000+00%3A00"


@pytest.mark.parametrize("template", [DEFAULT_TEMPLATE, "%Y/{uuid}.{ext}", "{random}-{unix_ns}"])
def test_ten_thousand_renders_do_not_collide(template: str) -> None:
    tpl = KeyTemplate(template)
    keys = {tpl.render(WHEN, "jsonl", worker=w % 4) for w in range(10_000)}
    assert len(keys) == 10_000


def test_unix_ns_alone_is_not_unique_enough() -> None:
    # two workers can read the same nanosecond clock value; a random part is required
    with pytest.raises(ConfigError, match="uuid"):
        KeyTemplate("%Y/{unix_ns}.{ext}")
    KeyTemplate("%Y/{unix_ns}-{random}.{ext}")
