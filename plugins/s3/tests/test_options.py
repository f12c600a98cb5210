"""The S3 sink's options and registration: parsing, validation, key joining, light import."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.options import parse_options
from parquet_ingestor_s3.options import (
    DEFAULT_PART_SIZE,
    S3_OPTIONS,
    WHERE,
    join_key,
    settings_from_options,
)

pytestmark = pytest.mark.timeout(60)
MIB = 1024 * 1024


def settings(**raw: object):
    return settings_from_options(**parse_options(S3_OPTIONS, raw, WHERE))


def test_defaults():
    s = settings(bucket="b")
    assert s.prefix == ""
    assert s.part_size == DEFAULT_PART_SIZE == 8 * MIB
    assert s.multipart_threshold == s.part_size
    assert s.check_bucket is True
    assert s.sse is None and s.tags == {} and s.metadata == {}
    assert s.region is None and s.endpoint_url is None


def test_cli_strings_are_typed():
    s = settings(bucket="b", prefix="events/", part_size="16MiB", multipart_threshold="64MiB",
                 tags="team=data,env=prod", metadata="a=1", check_bucket="false", sse="AES256")
    assert s.part_size == 16 * MIB and s.multipart_threshold == 64 * MIB
    assert s.tags == {"team": "data", "env": "prod"}
    assert s.metadata == {"a": "1"}
    assert s.check_bucket is False
    assert s.prefix == "events"


def test_kms_key_implies_aws_kms():
    assert settings(bucket="b", kms_key_id="alias/k").sse == "aws:kms"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "sink 's3' needs option 'bucket'"),
        ({"bucket": "b", "part_size": "1MiB"}, "option 'part_size': '1MiB' is below the minimum"),
        ({"bucket": "b", "sse": "aes"}, "option 'sse': 'aes' is not one of AES256"),
        ({"bucket": "b", "sse": "AES256", "kms_key_id": "k"}, "option 'kms_key_id': needs sse"),
        ({"bucket": "b/events"}, "option 'bucket': expected a bucket name"),
        ({"bucket": "b", "endpoint_url": "localhost:9000"}, "option 'endpoint_url'"),
        ({"bucket": "b", "acl": "everyone"}, "option 'acl'"),
        ({"bucket": "b", "tags": ",".join(f"k{i}=v" for i in range(11))}, "at most 10 tags"),
        ({"bucket": "b", "tags": "env=a&b"}, "option 'tags': env=a&b is not a valid S3 tag"),
        ({"bucket": "b", "metadata": {"k": "caf\u00e9"}}, "option 'metadata'"),
        ({"bucket": "b", "access_key": "x"}, "has no option 'access_key'"),
    ],
)
def test_bad_options_are_one_line_config_errors(raw, message):
    with pytest.raises(ConfigError) as caught:
        settings(**raw)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("prefix", "key", "expected"),
    [
        ("events/", "a/b", "events/a/b"),
        ("events", "a/b", "events/a/b"),
        ("/events/", "/a/b", "events/a/b"),
        ("", "a", "a"),
        ("", "/a", "a"),
        ("x//y", "a//b", "x/y/a/b"),
    ],
)
def test_join_key(prefix, key, expected):
    assert join_key(prefix, key) == expected


def test_registered_through_the_entry_point():
    from parquet_ingestor.plugins import build_registry

    registry = build_registry()
    spec = registry.get("sink", "s3")
    assert spec.distribution == "parquet-ingestor-s3"
    assert spec.factory == "parquet_ingestor_s3.sink:S3Sink"
    names = {opt.name for opt in spec.options}
    assert {"bucket", "prefix", "region", "endpoint_url", "part_size", "multipart_threshold",
            "sse", "kms_key_id", "storage_class", "acl", "expected_bucket_owner", "tags",
            "metadata", "check_bucket"} <= names
    # No way to pass keys: credentials come from the standard AWS chain only.
    assert not any("secret" in n or "access_key" in n for n in names)
    sink = spec.create({"bucket": "b", "prefix": "p/", "part_size": "5MiB"})
    assert sink.url("k.parquet") == "s3://b/p/k.parquet"
    assert sink.settings.part_size == 5 * MIB


def test_plugin_module_does_not_import_boto3():
    code = textwrap.dedent(
        """
        import sys
        import parquet_ingestor_s3.plugin
        from parquet_ingestor.plugins import build_registry
        build_registry(entry_points_enabled=False,
                       extra_plugins=[("s3", parquet_ingestor_s3.plugin)]).get("sink", "s3")
        heavy = sorted(m for m in ("boto3", "botocore", "s3transfer", "smart_open")
                       if m in sys.modules)
        print(",".join(heavy) or "none")
        import parquet_ingestor_s3.sink
        print("boto3" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == ["none", "False"]  # not even the sink module imports boto3 until it is used
