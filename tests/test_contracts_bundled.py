"""The bundled parquet encoder passes the same EncoderContract third-party encoders use, built
the way ``ingest`` builds it (by name from the registry, options from strings) and read back
with pyarrow, an independent reader. (The sqs, s3 and redis suites live with those plugins.)"""

from __future__ import annotations

import io
from typing import Any

import pytest
from parquet_ingestor import Encoder
from parquet_ingestor.plugins import build_registry
from parquet_ingestor.testing import EncoderContract

pq = pytest.importorskip("pyarrow.parquet")


class TestParquetEncoderContract(EncoderContract):
    def make_encoder(self) -> Encoder:
        encoder: Encoder = build_registry().get("encoder", "parquet").create({})
        return encoder

    def read_back(self, data: bytes) -> list[dict[str, Any]]:
        return list(pq.read_table(io.BytesIO(data)).to_pylist())
