"""Fixtures of the black-box reliability suite; the helpers live in ``reliability_kit.py``
(importable from the test modules because this folder is put on ``sys.path`` here)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from reliability_kit import clients  # noqa: E402


@pytest.fixture
def aws(moto_endpoint: str, aws_env: dict[str, str]) -> Iterator[tuple[Any, Any]]:
    """(sqs, s3) boto3 clients talking to moto directly (never through a proxy)."""
    yield clients(moto_endpoint)


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    """Where each ``ingest`` run of a test leaves its stdout and stderr."""
    path = tmp_path / "logs"
    path.mkdir()
    return path
