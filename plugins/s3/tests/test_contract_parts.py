"""The core's sink suite against S3 on moto (it replaces the class that lived in
test_pipeline.py): content type and metadata read back with HEAD, and files of 2.5 parts at the
sink's own 5 MiB part size, so multipart upload, its completion and its abort are checked."""

from __future__ import annotations

from typing import Any

import pytest
from parquet_ingestor.testing import SinkContract, StoredObject
from parquet_ingestor_s3.sink import S3Sink

pytestmark = pytest.mark.aws
PART = 5 << 20  # the smallest part S3 takes


class TestS3MultipartContract(SinkContract):
    part_size = PART

    @pytest.fixture(autouse=True)
    def _moto(self, moto_endpoint: str, store: Any) -> None:
        self.endpoint = moto_endpoint
        self.store = store

    def make_sink(self) -> S3Sink:
        return S3Sink(bucket=self.store.bucket, prefix="contract-root/",
                      endpoint_url=self.endpoint, part_size=str(PART))

    def read_stored(self, sink: Any, key: str) -> StoredObject | None:
        full_key = sink.settings.object_key(key)
        if full_key not in self.store.object_keys():
            return None
        head = self.store.head(full_key)
        return StoredObject(self.store.read(full_key), head.get("ContentType"),
                            head.get("Metadata", {}))

    def test_multi_part_upload_left_nothing_pending(self) -> None:
        self.test_multi_part_file_round_trips()
        self.test_abort_leaves_nothing()
        assert self.store.pending_uploads() == []
