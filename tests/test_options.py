"""Option parsing: every type, units, choices, bounds, required and unknown options."""

from __future__ import annotations

from typing import Any

import pytest
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.options import Option, parse_options, split_pairs
from parquet_ingestor.units import format_size, parse_duration, parse_size

W = "source 'demo'"


@pytest.mark.parametrize(("text", "expected"), [
    ("5MiB", 5 * 1024**2), ("512KB", 512_000), ("512kb", 512_000), ("1GiB", 1024**3),
    ("1024", 1024), (1024, 1024), ("1.5MiB", int(1.5 * 1024**2)), ("10 MB", 10_000_000),
    ("0", 0), ("7B", 7), ("2k", 2000), ("2Ki", 2048),
])
def test_sizes(text: Any, expected: int) -> None:
    assert parse_size(text) == expected
    assert Option("s", "size").parse(text, W) == expected


@pytest.mark.parametrize("bad", ["5XB", "MiB", "-1", "five", "", "1e3", True, -5])
def test_bad_sizes(bad: Any) -> None:
    with pytest.raises(ConfigError, match="option 'max'"):
        Option("max", "size").parse(bad, W)


@pytest.mark.parametrize(("text", "expected"), [
    ("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("2", 2.0), (12, 12.0),
    ("1.5s", 1.5), ("250us", 0.00025), ("1d", 86400.0), ("2min", 120.0), (0.25, 0.25),
])
def test_durations(text: Any, expected: float) -> None:
    assert parse_duration(text) == pytest.approx(expected)
    assert Option("d", "duration").parse(text, W) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["5 minutes", "ms", "-1s", "soon", "", False, -1])
def test_bad_durations(bad: Any) -> None:
    with pytest.raises(ConfigError, match="option 'wait'"):
        Option("wait", "duration").parse(bad, W)


@pytest.mark.parametrize(("kind", "raw", "expected"), [
    ("str", "abc", "abc"), ("str", 5, "5"),
    ("int", "42", 42), ("int", 42, 42), ("int", " 7 ", 7),
    ("float", "2.5", 2.5), ("float", 3, 3.0),
    ("bool", "true", True), ("bool", "YES", True), ("bool", "1", True), ("bool", "on", True),
    ("bool", "false", False), ("bool", "no", False), ("bool", "0", False), ("bool", False, False),
    ("list", "a, b,,c", ["a", "b", "c"]), ("list", ["x", 1], ["x", "1"]), ("list", "", []),
    ("map", "k=v, k2=v=2", {"k": "v", "k2": "v=2"}), ("map", {"a": 1}, {"a": "1"}),
])
def test_every_type(kind: Any, raw: Any, expected: Any) -> None:
    assert Option("x", kind).parse(raw, W) == expected


@pytest.mark.parametrize(("kind", "raw"), [
    ("str", True), ("str", ["a"]), ("int", "4.5"), ("int", 4.5), ("int", True), ("int", "x"),
    ("float", "abc"), ("float", True), ("bool", "maybe"), ("bool", 2), ("map", "novalue"),
    ("map", "=v"),
])
def test_type_errors_name_the_option(kind: Any, raw: Any) -> None:
    with pytest.raises(ConfigError) as info:
        Option("thing", kind).parse(raw, W)
    message = str(info.value)
    assert message.startswith("source 'demo' option 'thing':")
    assert "\n" not in message


def test_pipeline_options_are_named_as_flags() -> None:
    with pytest.raises(ConfigError, match="^--batch-max-bytes: "):
        Option("batch_max_bytes", "size").parse("lots", "pipeline")


def test_choices() -> None:
    opt = Option("mode", choices=("a", "b"))
    assert opt.parse("b", W) == "b"
    with pytest.raises(ConfigError, match="'c' is not one of a, b"):
        opt.parse("c", W)


def test_min_max() -> None:
    opt = Option("n", "int", min=1, max=10)
    assert opt.parse("1", W) == 1 and opt.parse("10", W) == 10
    with pytest.raises(ConfigError, match="below the minimum 1"):
        opt.parse("0", W)
    with pytest.raises(ConfigError, match="above the maximum 10"):
        opt.parse(11, W)
    with pytest.raises(ConfigError, match="above the maximum 20"):
        Option("wait", "duration", max=20).parse("1m", W)
    with pytest.raises(ConfigError, match="below the minimum 0.5"):
        Option("f", "float", min=0.5).parse("0.1", W)


DECLARED = (
    Option("queue_url", required=True, help="URL of the queue"),
    Option("wait_time", "duration", default="20s", min=0, max=20),
    Option("max_bytes", "size", default="5MiB"),
    Option("tags", "list"),
)


def test_parse_options_fills_defaults_and_none() -> None:
    values = parse_options(DECLARED, {"queue-url": "https://q"}, W)
    assert values == {"queue_url": "https://q", "wait_time": 20.0, "max_bytes": 5 * 1024**2,
                      "tags": None}


def test_required_option_missing() -> None:
    with pytest.raises(ConfigError, match="source 'demo' needs option 'queue_url'"):
        parse_options(DECLARED, {}, W)


def test_unknown_option_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        parse_options(DECLARED, {"queue_url": "q", "wait_tiem": "1s"}, W)
    message = str(info.value)
    assert "wait_tiem" in message and "source 'demo'" in message
    assert "wait_time" in message  # the known options are listed


def test_defaults_are_validated_too() -> None:
    # a plugin with a bad default is a plugin bug, reported as a ConfigError naming the option
    with pytest.raises(ConfigError, match="option 'n'"):
        parse_options((Option("n", "int", default="many"),), {}, W)


def test_split_pairs() -> None:
    assert split_pairs(["a=1", "b=x=y", "c="], "--source-opt") == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(ConfigError, match="--sink-opt expects KEY=VALUE, got 'oops'"):
        split_pairs(["oops"], "--sink-opt")
    with pytest.raises(ConfigError):
        split_pairs(["=v"], "--sink-opt")


def test_describe_hides_secret_defaults() -> None:
    assert "hunter2" not in Option("token", default="hunter2", secret=True).describe()
    assert "default 20s" in Option("wait", "duration", default="20s").describe()
    assert "required" in Option("url", required=True).describe()
    assert "a|b" in Option("m", choices=("a", "b")).describe()


def test_format_size() -> None:
    assert format_size(512) == "512 B"
    assert format_size(5 * 1024**2) == "5.0 MiB"


def test_prefixed_map_collects_keys_verbatim() -> None:
    declared = [Option("catalog", help="name"),
                Option("catalog_properties", "map", prefix="catalog.", help="passthrough")]
    values = parse_options(declared, {"catalog": "prod", "catalog.s3.access-key-id": "K",
                                      "catalog.uri": "sqlite:///x.db"}, W)
    assert values == {"catalog": "prod",
                      "catalog_properties": {"s3.access-key-id": "K", "uri": "sqlite:///x.db"}}
    whole = parse_options(declared, {"catalog_properties": "a=1", "catalog.b": "2"}, W)
    assert whole["catalog_properties"] == {"a": "1", "b": "2"}
    assert parse_options(declared, {}, W)["catalog_properties"] is None
    with pytest.raises(ConfigError, match="has no option 'catalogue.uri'"):
        parse_options(declared, {"catalogue.uri": "x"}, W)
    assert declared[1].describe().startswith("catalog_properties, catalog.KEY (map)")
