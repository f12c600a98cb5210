"""Registration, options and the light plugin module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.plugins import build_registry
from parquet_ingestor_sqs.options import SqsSettings, region_from_url, split_attributes


def test_importing_the_plugin_does_not_import_boto3():
    code = (
        "import sys, parquet_ingestor_sqs.plugin\n"
        "heavy = [m for m in ('boto3', 'botocore') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_registered_through_the_entry_point():
    spec = build_registry().get("source", "sqs")
    assert spec.factory == "parquet_ingestor_sqs.source:SqsSource"
    names = {opt.name for opt in spec.options}
    assert {"queue_url", "wait_time", "max_messages", "visibility_timeout", "pollers",
            "max_in_flight", "attributes", "retry_delay", "unwrap", "check_queue"} <= names


@pytest.mark.aws
@pytest.mark.timeout(30)
def test_created_from_text_options(moto_endpoint, sqs, unique_name):
    url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    spec = build_registry().get("source", "sqs")
    source = spec.create({"queue_url": url, "endpoint_url": moto_endpoint, "wait_time": "1s",
                          "visibility_timeout": "1m", "pollers": "3", "attributes": "All"})
    try:
        assert source.settings.visibility_timeout == 60
        assert source.poller_count == 3
        assert source.exhausted is False
    finally:
        source.close()


def test_option_ranges_are_checked():
    spec = build_registry().get("source", "sqs")
    with pytest.raises(ConfigError, match="option 'wait_time'"):
        spec.parse({"queue_url": "https://sqs.us-east-1.amazonaws.com/1/q", "wait_time": "21s"})
    with pytest.raises(ConfigError, match="option 'max_messages'"):
        SqsSettings.from_options(queue_url="https://sqs.us-east-1.amazonaws.com/1/q", max_messages=11)
    with pytest.raises(ConfigError, match="option 'unwrap'"):
        SqsSettings.from_options(queue_url="https://sqs.us-east-1.amazonaws.com/1/q", unwrap="sqs")


def test_settings_defaults_and_durations():
    s = SqsSettings.from_options(queue_url="https://sqs.eu-west-1.amazonaws.com/1/events.fifo",
                                 wait_time="500ms", retry_delay="1m")
    assert (s.wait_time, s.visibility_timeout, s.retry_delay) == (1, 30, 60)
    assert (s.max_messages, s.pollers, s.max_in_flight) == (10, 2, 20000)
    assert s.region == "eu-west-1"
    assert s.fifo


def test_attribute_names_are_sorted_into_system_and_message_attributes():
    system, message = split_attributes(["sent_timestamp", "AWSTraceHeader", "trace_id", "app.*"])
    assert system == ("SentTimestamp", "ApproximateReceiveCount", "MessageGroupId", "AWSTraceHeader")
    assert message == ("trace_id", "app.*")
    assert split_attributes(["All"]) == (
        ("SentTimestamp", "ApproximateReceiveCount", "MessageGroupId", "All"), ("All",))


def test_region_from_url():
    assert region_from_url("https://sqs.ap-southeast-2.amazonaws.com/1/q") == "ap-southeast-2"
    assert region_from_url("http://127.0.0.1:5000/123456789012/q") is None


@pytest.mark.aws
@pytest.mark.timeout(60)
def test_cli_reports_a_missing_queue_on_one_line(aws_env, moto_endpoint, tmp_path):
    url = f"{moto_endpoint}/123456789012/no-such-queue"
    ingest = [str(Path(sys.executable).with_name("ingest"))]
    result = subprocess.run(
        [*ingest, "--source", "sqs", "--source-opt", f"queue_url={url}",
         "--sink", "file", "--sink-opt", f"path={tmp_path}"],
        env=aws_env, capture_output=True, text=True, timeout=50,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"source 'sqs' option 'queue_url': queue {url} does not exist" in lines[0]
