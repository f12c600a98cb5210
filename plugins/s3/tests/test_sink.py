"""The S3 sink against moto over real HTTP: content, atomicity, aborts, retries, headers."""

from __future__ import annotations

import os
import random
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from parquet_ingestor.errors import ConfigError
from parquet_ingestor_s3.errors import S3SinkError

pytestmark = [pytest.mark.aws, pytest.mark.timeout(120)]

MIB = 1024 * 1024
PARQUET = "application/vnd.apache.parquet"
SECRET_KEY = "fake-secret-key-for-tests-only-000000000"


def write_in_chunks(writer: Any, data: bytes, seed: int = 0) -> None:
    """Write ``data`` in uneven chunks, as an encoder does."""
    rng = random.Random(seed)
    pos = 0
    while pos < len(data):
        step = rng.randint(1, 700_000)
        assert writer.write(data[pos:pos + step]) == len(data[pos:pos + step])
        pos += step


def context(workers: int) -> SimpleNamespace:
    return SimpleNamespace(workers=workers, metrics=None)


def test_small_file_is_one_put_object(make_sink, store, op_log):
    sink = make_sink(bucket=store.bucket, prefix="events/")
    ops = op_log(sink.client)
    data = os.urandom(300_000)
    writer = sink.open("2026/01/01/a.parquet", PARQUET, {"ingest-records": "12"})
    write_in_chunks(writer, data)
    assert store.object_keys() == []  # nothing visible before commit
    writer.commit()

    assert store.read("events/2026/01/01/a.parquet") == data
    head = store.head("events/2026/01/01/a.parquet")
    assert head["ContentType"] == PARQUET
    assert head["Metadata"] == {"ingest-records": "12"}
    assert ops.count("PutObject") == 1
    assert ops.count("CreateMultipartUpload") == 0
    assert sink.url("2026/01/01/a.parquet") == f"s3://{store.bucket}/events/2026/01/01/a.parquet"


def test_large_file_streams_parts_and_is_byte_for_byte(make_sink, store, op_log):
    sink = make_sink(bucket=store.bucket, part_size="5MiB")
    ops = op_log(sink.client)
    data = os.urandom(21 * MIB + 12_345)
    writer = sink.open("big.bin", "application/octet-stream", {})

    write_in_chunks(writer, data[: 11 * MIB])
    # Two parts already went out while "encoding"; less than a part is buffered in memory.
    assert ops.count("UploadPart") == 2
    assert len(writer._buffer) < 5 * MIB
    assert len(store.pending_uploads()) == 1
    assert store.object_keys() == []  # the object does not exist until commit

    write_in_chunks(writer, data[11 * MIB:], seed=1)
    writer.commit()
    assert store.read("big.bin") == data
    assert ops.count("UploadPart") == 5  # 4 full parts of 5 MiB + the 1 MiB tail
    assert ops.count("CompleteMultipartUpload") == 1
    assert ops.count("PutObject") == 0
    assert store.pending_uploads() == []
    assert writer.tell() == len(data)


def test_exact_multiple_of_part_size_sends_no_empty_part(make_sink, store, op_log):
    sink = make_sink(bucket=store.bucket, part_size="5MiB")
    ops = op_log(sink.client)
    data = os.urandom(10 * MIB)
    writer = sink.open("exact.bin", "application/octet-stream", {})
    writer.write(data)
    writer.commit()
    assert store.read("exact.bin") == data
    assert ops.count("UploadPart") == 2


@pytest.mark.parametrize(
    ("size", "multipart"),
    [(0, False), (9 * MIB, False), (12 * MIB - 1, False), (12 * MIB, True), (13 * MIB, True)],
)
def test_multipart_threshold_decides_put_or_multipart(make_sink, store, op_log, size, multipart):
    sink = make_sink(bucket=store.bucket, part_size="5MiB", multipart_threshold="12MiB")
    ops = op_log(sink.client)
    data = os.urandom(size)
    writer = sink.open("t.bin", "application/octet-stream", {})
    write_in_chunks(writer, data)
    writer.commit()
    assert store.read("t.bin") == data
    assert ops.count("CreateMultipartUpload") == int(multipart)
    assert ops.count("PutObject") == int(not multipart)


def test_abort_mid_stream_leaves_nothing(make_sink, store):
    sink = make_sink(bucket=store.bucket, part_size="5MiB")
    writer = sink.open("aborted.bin", "application/octet-stream", {})
    writer.write(os.urandom(12 * MIB))
    assert len(store.pending_uploads()) == 1
    writer.abort()
    assert store.object_keys() == []
    assert store.pending_uploads() == []
    writer.abort()  # a second abort is harmless
    with pytest.raises(ValueError, match="aborted"):
        writer.write(b"more")
    with pytest.raises(ValueError, match="aborted"):
        writer.commit()


def test_failing_upload_part_aborts_and_names_bucket_and_key(make_sink, store, inject_fault):
    sink = make_sink(bucket=store.bucket, prefix="p", part_size="5MiB")
    inject_fault(sink.client, "UploadPart", 403, "AccessDenied", "Access Denied", skip=1)
    writer = sink.open("x/denied.bin", "application/octet-stream", {})
    writer.write(os.urandom(6 * MIB))  # part 1 goes through
    with pytest.raises(S3SinkError) as caught:
        writer.write(os.urandom(6 * MIB))  # part 2 is refused

    message = str(caught.value)
    assert f"s3://{store.bucket}/p/x/denied.bin" in message
    assert "UploadPart 2" in message
    assert "access denied" in message and "AccessDenied" in message
    assert SECRET_KEY not in message
    assert "\n" not in message
    assert store.object_keys() == []
    assert store.pending_uploads() == []
    writer.abort()  # what the pipeline does next: must be safe
    assert store.pending_uploads() == []


def test_failing_commit_aborts_and_abort_after_is_safe(make_sink, store, inject_fault):
    sink = make_sink(bucket=store.bucket, part_size="5MiB")
    inject_fault(sink.client, "CompleteMultipartUpload", 400, "InvalidPart",
                 "One or more of the specified parts could not be found.")
    writer = sink.open("c.bin", "application/octet-stream", {})
    writer.write(os.urandom(7 * MIB))
    with pytest.raises(S3SinkError, match=r"c\.bin: CompleteMultipartUpload failed: .*InvalidPart"):
        writer.commit()
    assert store.object_keys() == []
    assert store.pending_uploads() == []
    writer.abort()
    writer.abort()
    assert store.pending_uploads() == []


def test_failing_put_object_names_bucket_key_and_code(make_sink, store, inject_fault):
    sink = make_sink(bucket=store.bucket)
    inject_fault(sink.client, "PutObject", 503, "SlowDown", "Please reduce your request rate.",
                 times=10)
    writer = sink.open("slow.json", "application/json", {})
    writer.write(b"{}")
    with pytest.raises(S3SinkError) as caught:
        writer.commit()
    message = str(caught.value)
    assert message.startswith(f"s3://{store.bucket}/slow.json: PutObject failed: throttled")
    assert "SlowDown" in message
    assert store.object_keys() == []


def test_signature_error_does_not_leak_credentials(make_sink, store, inject_fault, op_log):
    sink = make_sink(bucket=store.bucket)
    ops = op_log(sink.client)
    # S3's real SignatureDoesNotMatch body carries the access key id, the string to sign and
    # the signature: none of it (nor the request's Authorization header) may reach the message.
    extra = ("<AWSAccessKeyId>AKIAFAKEFAKEFAKE0000</AWSAccessKeyId>"
             "<StringToSign>AWS4-HMAC-SHA256 20260101T000000Z</StringToSign>"
             "<SignatureProvided>deadbeefcafe</SignatureProvided>")
    inject_fault(sink.client, "PutObject", 403, "SignatureDoesNotMatch",
                 "The request signature we calculated does not match the signature you provided.",
                 extra_xml=extra)
    writer = sink.open("sig.bin", "application/octet-stream", {})
    writer.write(b"x")
    with pytest.raises(S3SinkError) as caught:
        writer.commit()
    message = str(caught.value)
    assert "SignatureDoesNotMatch" in message and "sig.bin" in message
    authorization = next(h["authorization"] for name, h in ops.headers if name == "PutObject")
    signature = authorization.rsplit("Signature=", 1)[-1]
    for secret in (SECRET_KEY, "deadbeefcafe", "AKIAFAKEFAKEFAKE0000", signature):
        assert secret not in message


def test_transient_500_is_retried_then_succeeds(make_sink, store, inject_fault):
    sink = make_sink(bucket=store.bucket, part_size="5MiB")
    part_fault = inject_fault(sink.client, "UploadPart", 500, "InternalError",
                              "We encountered an internal error. Please try again.", skip=1)
    put_fault = inject_fault(sink.client, "PutObject", 500, "InternalError",
                             "We encountered an internal error. Please try again.")

    big = os.urandom(11 * MIB)
    writer = sink.open("retried-big.bin", "application/octet-stream", {})
    write_in_chunks(writer, big)
    writer.commit()
    small = os.urandom(1000)
    writer = sink.open("retried-small.bin", "application/octet-stream", {})
    writer.write(small)
    writer.commit()

    assert part_fault.injected == 1 and part_fault.attempts == 4  # 3 parts + 1 retry
    assert put_fault.injected == 1 and put_fault.attempts == 2
    assert store.read("retried-big.bin") == big
    assert store.read("retried-small.bin") == small
    assert store.pending_uploads() == []


def test_sse_kms_tags_metadata_storage_class_reach_s3(make_sink, store, moto_endpoint, op_log):
    import boto3

    kms = boto3.client("kms", endpoint_url=moto_endpoint, region_name="us-east-1")
    key_id = kms.create_key(Description="s3 sink test")["KeyMetadata"]["Arn"]
    sink = make_sink(
        bucket=store.bucket, part_size="5MiB", kms_key_id=key_id, storage_class="STANDARD_IA",
        tags={"team": "data eng", "env": "test/dev+1"}, metadata={"pipeline": "clicks"},
        acl="bucket-owner-full-control", expected_bucket_owner="123456789012",
    )
    ops = op_log(sink.client)
    for key, size in (("small.parquet", 1000), ("large.parquet", 6 * MIB)):
        data = os.urandom(size)
        writer = sink.open(key, PARQUET, {"ingest-messages": "7"})
        writer.write(data)
        writer.commit()
        assert store.read(key) == data
        head = store.head(key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == key_id
        assert head["StorageClass"] == "STANDARD_IA"
        assert head["ContentType"] == PARQUET
        assert head["Metadata"] == {"pipeline": "clicks", "ingest-messages": "7"}
        tags = store.s3.get_object_tagging(Bucket=store.bucket, Key=key)["TagSet"]
        assert {t["Key"]: t["Value"] for t in tags} == {"team": "data eng", "env": "test/dev+1"}
    sent = {name: h for name, h in ops.headers}
    for name in ("PutObject", "CreateMultipartUpload"):
        assert sent[name]["x-amz-acl"] == "bucket-owner-full-control"
    for name in ("HeadBucket", "PutObject", "CreateMultipartUpload", "UploadPart",
                 "CompleteMultipartUpload"):
        assert sent[name]["x-amz-expected-bucket-owner"] == "123456789012"


def test_sse_aes256(make_sink, store):
    sink = make_sink(bucket=store.bucket, sse="AES256")
    writer = sink.open("aes.bin", "application/octet-stream", {})
    writer.write(b"secret stuff")
    writer.commit()
    assert store.head("aes.bin")["ServerSideEncryption"] == "AES256"


@pytest.mark.parametrize(
    ("prefix", "key", "expected"),
    [
        ("events/", "2026/a.parquet", "events/2026/a.parquet"),
        ("events", "2026/a.parquet", "events/2026/a.parquet"),
        ("/events//", "/2026/a.parquet", "events/2026/a.parquet"),
        ("a//b/", "c//d.parquet", "a/b/c/d.parquet"),
        ("", "/2026/a.parquet", "2026/a.parquet"),
        (None, "x.parquet", "x.parquet"),
    ],
)
def test_prefix_joining(make_sink, store, prefix, key, expected):
    options = {"prefix": prefix} if prefix is not None else {}
    sink = make_sink(bucket=store.bucket, **options)
    writer = sink.open(key, "text/plain", {})
    writer.write(b"data")
    writer.commit()
    assert store.object_keys() == [expected]
    assert sink.url(key) == f"s3://{store.bucket}/{expected}"


def test_concurrent_writers_share_one_sink(make_sink, store, op_log):
    sink = make_sink(bucket=store.bucket, prefix="conc/", part_size="5MiB")
    sink.start(context(workers=8))
    assert sink.client.meta.config.max_pool_connections == 18
    ops = op_log(sink.client)
    expected: dict[str, bytes] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i, size in enumerate((2000 + n, 6 * MIB + n, 50_000)):
                data = os.urandom(size)
                key = f"w{n}/file-{i}.bin"
                writer = sink.open(key, "application/octet-stream", {"worker": str(n)})
                write_in_chunks(writer, data, seed=n * 10 + i)
                writer.commit()
                with lock:
                    expected[f"conc/{key}"] = data
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=100)
    assert errors == []
    assert store.object_keys() == sorted(expected)
    for key, data in expected.items():
        assert store.read(key) == data, key
        assert store.head(key)["Metadata"]["worker"] == key.split("/")[1][1:]
    assert ops.count("CompleteMultipartUpload") == 8
    assert store.pending_uploads() == []


def test_missing_bucket_is_a_config_error(make_sink, unique_name):
    sink = make_sink(bucket=unique_name)
    with pytest.raises(ConfigError) as caught:
        sink.start(context(workers=2))
    assert str(caught.value) == f"sink 's3' option 'bucket': bucket '{unique_name}' does not exist"


def test_missing_bucket_without_check_fails_the_write_clearly(make_sink, unique_name):
    sink = make_sink(bucket=unique_name, check_bucket=False)
    sink.start(context(workers=2))  # no HeadBucket
    writer = sink.open("k.bin", "application/octet-stream", {})
    writer.write(b"abc")
    with pytest.raises(S3SinkError) as caught:
        writer.commit()
    message = str(caught.value)
    assert message.startswith(f"s3://{unique_name}/k.bin: PutObject failed: ")
    assert "bucket does not exist" in message and "NoSuchBucket" in message
    assert SECRET_KEY not in message


def test_endpoint_from_aws_endpoint_url_variable(monkeypatch, moto_endpoint, store):
    from parquet_ingestor_s3.sink import S3Sink

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    sink = S3Sink(bucket=store.bucket)  # no endpoint_url option
    try:
        sink.start(context(workers=1))
        writer = sink.open("env.txt", "text/plain", {})
        writer.write(b"via AWS_ENDPOINT_URL")
        writer.commit()
    finally:
        sink.close()
    assert store.read("env.txt") == b"via AWS_ENDPOINT_URL"


def test_close_aborts_unfinished_uploads(make_sink, store):
    sink = make_sink(bucket=store.bucket, part_size="5MiB")
    writer = sink.open("left-open.bin", "application/octet-stream", {})
    writer.write(os.urandom(6 * MIB))
    assert len(store.pending_uploads()) == 1
    sink.close()
    assert store.pending_uploads() == []
    assert store.object_keys() == []
    sink.close()  # idempotent
