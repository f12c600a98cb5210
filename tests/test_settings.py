"""Defaults declared once (#12 item 6): the CLI, TOML, env and PipelineSettings agree, and
PipelineSettings words its errors for the Python API."""

from __future__ import annotations

import pytest
from parquet_ingestor.batcher import BatchLimits
from parquet_ingestor.config import PIPELINE_OPTIONS, RunConfig, load_toml, settings_from
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.keys import DEFAULT_TEMPLATE
from parquet_ingestor.pipeline import PipelineSettings
from parquet_ingestor.retry import RetryPolicy


def test_python_api_defaults_are_the_cli_defaults() -> None:
    from_cli = settings_from(RunConfig().values())
    assert PipelineSettings() == from_cli
    assert PipelineSettings().write_retry == RetryPolicy(5, 0.5, 30.0, 0.5)
    assert PipelineSettings().ack_retry == RetryPolicy(5, 0.2, 5.0, 0.5)
    assert BatchLimits() == from_cli.batch == BatchLimits(5 * 1024 * 1024, 0, 300.0)
    declared = {opt.name: opt.default for opt in PIPELINE_OPTIONS}
    assert declared["key_template"] == DEFAULT_TEMPLATE == PipelineSettings().key_template


def test_toml_and_env_reach_the_same_settings(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "c.toml"
    path.write_text('[pipeline]\nwrite_base_delay = "1s"\nworkers = 2\n')
    settings = settings_from(load_toml(str(path)).values())
    assert settings.write_retry.base_delay == 1.0 and settings.workers == 2
    assert settings.ack_retry == PipelineSettings().ack_retry
    assert settings.as_options() | {"write_base_delay": 0.5, "workers": 4} == (
        PipelineSettings().as_options())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"workers": 0}, "PipelineSettings option 'workers': 0 is below the minimum 1"),
    ({"partition_by": "hour"}, "PipelineSettings option 'partition_by': 'hour' is neither"),
    ({"key_template": "x/{ext}"}, "PipelineSettings option 'key_template': must contain {uuid}"),
    ({"error_key_template": "/a/{uuid}"}, "option 'error_key_template': must be relative"),
    ({"max_open_partitions": 0}, "option 'max_open_partitions': 0 is below the minimum 1"),
    ({"on_partition_overflow": "drop"}, "'drop' is not one of processing, reject"),
    ({"write_retry": RetryPolicy(attempts=5, base_delay=1, max_delay=1, jitter=0.5),
      "workers": 300}, "'workers': 300 is above the maximum 256"),
])
def test_settings_errors_name_the_setting_not_a_flag(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as info:
        PipelineSettings(**kwargs)
    assert message in str(info.value)
    assert "--" not in str(info.value)


def test_cli_errors_still_name_the_flag() -> None:
    with pytest.raises(ConfigError, match="^--partition-by: 'hour' is neither"):
        RunConfig(pipeline={"partition_by": "hour"}).values()
    with pytest.raises(ConfigError, match="^--key-template: must contain"):
        RunConfig(pipeline={"key_template": "a/{ext}"}).values()
