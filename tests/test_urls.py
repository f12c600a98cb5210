"""The file source and file sink on URLs (smart-open), against moto's server and a local
http.server; bad URLs exit 2 with one line before anything is read."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor.builtins.file_sink import FileSink
from parquet_ingestor.builtins.file_source import FileSource
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.retry import RetryPolicy
from parquet_ingestor.urls import ReadFailed, RetryingReader, UrlStore, glob_pattern

pytest.importorskip("smart_open")


def lines_of(n: int, tag: str, width: int = 0) -> list[bytes]:
    pad = "x" * width
    return [json.dumps({"id": f"{tag}-{i}", "n": i, "pad": pad}).encode() for i in range(n)]


def zstd(data: bytes) -> bytes:
    try:
        from compression import zstd as z  # type: ignore[import-not-found]  # Python 3.14
    except ImportError:
        from backports import zstd as z  # type: ignore[import-not-found,no-redef]
    return bytes(z.compress(data))


def drain(source: FileSource) -> list[Any]:
    out: list[Any] = []
    while not source.exhausted:
        got = source.receive(1000, 0.1)
        source.ack(got)
        out += got
    source.close()
    return out


@pytest.fixture
def s3(moto_endpoint: str, unique_name: str) -> Iterator[tuple[Any, str]]:
    import boto3

    client = boto3.client("s3", endpoint_url=moto_endpoint)
    client.create_bucket(Bucket=unique_name)
    yield client, unique_name


# --- object stores (moto) ---------------------------------------------------------------------

@pytest.mark.aws
def test_glob_reads_gzip_and_zstd_objects_with_url_ids(
        s3: tuple[Any, str], aws_env: dict[str, str], run_ingest: Any, tmp_path: Path,
        read_jsonl: Callable[[Path], list[dict[str, Any]]]) -> None:
    client, bucket = s3
    files = {"arch/2026/11/a.jsonl.gz": gzip.compress, "arch/2026/11/b.jsonl.zst": zstd,
             "arch/2026/11/c.jsonl.gz": gzip.compress}
    expected: dict[str, str] = {}  # row id -> message id
    for key, compress in files.items():
        lines = lines_of(200, key)
        if key.startswith("arch/2026/11/c"):
            lines[7] = b"not json"  # rejected into the error sink, with its URL
        client.put_object(Bucket=bucket, Key=key, Body=compress(b"\n".join(lines) + b"\n"))
        for number, line in enumerate(lines, 1):
            if line != b"not json":
                expected[json.loads(line)["id"]] = f"s3://{bucket}/{key}:{number}"
    # not matched: one level deeper, another month
    client.put_object(Bucket=bucket, Key="arch/2026/11/deep/d.jsonl.gz", Body=b"junk")
    client.put_object(Bucket=bucket, Key="arch/2026/12/e.jsonl.gz", Body=b"junk")

    done = run_ingest(
        "--source", "file", "--source-opt", f"path=s3://{bucket}/arch/2026/11/*.jsonl.*",
        "--transformer-opt", "add_attributes=message_id", "--encoder", "jsonl",
        "--sink", "file", "--sink-opt", f"path={tmp_path / 'out'}",
        "--error-sink", "file", "--error-sink-opt", f"path=s3://{bucket}/errors", env=aws_env)
    assert done.returncode == 0, done.stderr
    rows = read_jsonl(tmp_path / "out")
    assert {r["id"]: r["_message_id"] for r in rows} == expected
    assert len(rows) == len(expected) == 599
    listed = client.list_objects_v2(Bucket=bucket, Prefix="errors/")["Contents"]
    [error] = [json.loads(line) for o in listed for line in
               client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().splitlines()]
    assert error["message_id"] == f"s3://{bucket}/arch/2026/11/c.jsonl.gz:8"
    assert error["body"] == "not json" and "JSON" in error["reason"]
    assert f"read s3://{bucket}/arch/2026/11/b.jsonl.zst to its end (200 lines)" in done.stderr


@pytest.mark.aws
def test_s3_url_sink_is_all_or_nothing(s3: tuple[Any, str], moto_endpoint: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An object appears only on commit; a write failing midway leaves no object and no
    pending multipart upload (the upload is terminated)."""
    from parquet_ingestor.commit import PendingFile, commit_set

    client, bucket = s3
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    sink = FileSink(f"s3://{bucket}/out/")
    sink.start()
    assert sink.url("a/b.jsonl") == f"s3://{bucket}/out/a/b.jsonl"
    part = b"x" * (6 << 20)  # more than one part: the multipart upload has begun

    writer = sink.open("a/ok.jsonl", "application/x-ndjson", {"ingest-records": "2"})
    writer.write(part)
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert "Contents" not in client.list_objects_v2(Bucket=bucket)  # not visible yet
    writer.write(b"tail")
    writer.commit()
    got = client.get_object(Bucket=bucket, Key="out/a/ok.jsonl")
    assert got["Body"].read() == part + b"tail"
    assert got["Metadata"] == {"ingest-records": "2"}

    def fill(stream: Any) -> None:
        stream.write(part)
        stream.write(part)
        raise OSError("disk gone midway")

    file = PendingFile("a/broken.jsonl", "application/x-ndjson", {}, fill, 1)
    outcome = commit_set(sink, [file], retry=RetryPolicy(attempts=2, base_delay=0),
                         abort=threading.Event())
    assert outcome.failed == [file] and "midway" in str(file.error)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["out/a/ok.jsonl"]
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


# --- http(s) ----------------------------------------------------------------------------------

class _Files(BaseHTTPRequestHandler):
    """Serves ``files``; the first ``cut`` GETs of a path stop after ``cut_at`` bytes."""

    files: dict[str, bytes] = {}
    cut: dict[str, int] = {}
    cut_at = 0
    requests: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.requests.append(self.path)
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.cut.get(self.path, 0) > 0:
            self.cut[self.path] -= 1
            self.wfile.write(data[:self.cut_at])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)


@pytest.fixture
def http_files() -> Iterator[tuple[str, type[_Files]]]:
    handler = type("Handler", (_Files,), {"files": {}, "cut": {}, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_http_jsonl_gz(http_files: tuple[str, type[_Files]]) -> None:
    base, handler = http_files
    lines = lines_of(3000, "h")
    handler.files["/dump/events.jsonl.gz"] = gzip.compress(b"\n".join(lines) + b"\n")
    got = drain(FileSource(f"{base}/dump/events.jsonl.gz"))
    assert [m.body for m in got] == lines
    assert got[41].id == f"{base}/dump/events.jsonl.gz:42"


def test_http_read_cut_midway_is_retried_where_it_stopped(
        http_files: tuple[str, type[_Files]]) -> None:
    base, handler = http_files
    lines = lines_of(30_000, "r", width=40)  # ~2.4 MB: several blocks
    handler.files["/big.jsonl"] = b"\n".join(lines) + b"\n"
    handler.cut["/big.jsonl"], handler.cut_at = 2, 1_500_000
    source = FileSource(f"{base}/big.jsonl")
    got = drain(source)
    assert [m.body for m in got] == lines  # each line once, in order
    assert handler.requests.count("/big.jsonl") == 3
    assert source.complete == [f"{base}/big.jsonl"] and not source.unread


def test_http_read_failing_for_good_exits_1_keeping_what_was_committed(
        http_files: tuple[str, type[_Files]], run_ingest: Any, tmp_path: Path,
        read_jsonl: Callable[[Path], list[dict[str, Any]]]) -> None:
    base, handler = http_files
    lines = lines_of(30_000, "f", width=40)
    handler.files["/big.jsonl"] = b"\n".join(lines) + b"\n"
    handler.cut["/big.jsonl"], handler.cut_at = 100, 1_500_000
    done = run_ingest("--source", "file", "--source-opt", f"path={base}/big.jsonl",
                      "--encoder", "jsonl", "--sink", "file", "--sink-opt",
                      f"path={tmp_path / 'out'}")
    assert done.returncode == 1, done.stderr
    [line] = [x for x in done.stderr.splitlines() if "could not read" in x]
    assert f"{base}/big.jsonl" in line and "after 5 attempts" in line
    after = int(line.split("after line ")[1].split(":")[0])
    rows = read_jsonl(tmp_path / "out")
    assert 0 < after < len(lines)
    assert [r["id"] for r in rows] == [f"f-{i}" for i in range(after)]  # committed, kept
    assert "file(s) not read to their end" in done.stderr
    assert "read to their end: none" in done.stderr


# --- corrupt data -----------------------------------------------------------------------------

def test_corrupt_gzip_member_keeps_lines_before_and_exits_1(
        tmp_path: Path, run_ingest: Any,
        read_jsonl: Callable[[Path], list[dict[str, Any]]]) -> None:
    lines = lines_of(20_000, "g", width=60)  # ~1.8 MB: the first block is delivered
    good = tmp_path / "in" / "a.jsonl.gz"
    good.parent.mkdir()
    good.write_bytes(gzip.compress(b"\n".join(lines) + b"\n") + b"garbage, not a gzip member")
    (tmp_path / "in" / "b.jsonl").write_bytes(b'{"id": "b-0"}\n')
    done = run_ingest("--source", "file", "--source-opt", f"path={tmp_path / 'in'}",
                      "--encoder", "jsonl", "--sink", "file", "--sink-opt",
                      f"path={tmp_path / 'out'}")
    assert done.returncode == 1, done.stderr
    [line] = [x for x in done.stderr.splitlines() if "could not read" in x]
    assert str(good) in line
    after = int(line.split("after line ")[1].split(":")[0])
    offset = int(line.split("(byte ")[1].split(" ")[0])  # of the text, where the lines end
    assert offset == len(b"".join(x + b"\n" for x in lines[:after]))
    ids = [r["id"] for r in read_jsonl(tmp_path / "out")]
    assert 0 < after < len(lines)
    assert sorted(ids) == sorted([f"g-{i}" for i in range(after)] + ["b-0"])
    assert f"read to their end: {tmp_path / 'in' / 'b.jsonl'}" in done.stderr


def test_corrupt_compressed_url_data_is_not_retried() -> None:
    data = gzip.compress(b'{"a": 1}\n' * 1000)[:-30]  # truncated: no end-of-stream marker
    opened: list[str] = []

    def opener(url: str) -> Any:
        opened.append(url)
        return gzip.GzipFile(fileobj=io.BytesIO(data))

    reader = RetryingReader("s3://b/x.jsonl.gz", opener, RetryPolicy(attempts=5, base_delay=0))
    with pytest.raises(ReadFailed, match=r"s3://b/x.jsonl.gz: corrupt data after byte 0"):
        reader.read(1 << 20)
    assert opened == ["s3://b/x.jsonl.gz"]


# --- bad input --------------------------------------------------------------------------------

def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


@pytest.mark.parametrize(("args", "needle"), [
    (["--source-opt", "path=foo://bucket/x.jsonl"], "unknown URL scheme 'foo'"),
    (["--source-opt", "path=gs://bucket/x.jsonl"], "pip install 'smart-open[gcs]'"),
    (["--source-opt", "path=http://127.0.0.1:9/*.jsonl"], "globs and prefixes need a store"),
    (["--source-opt", "path=http://127.0.0.1:9/x.jsonl", "--sink-opt", "path=sftp://h/x"],
     "sftp:// cannot be written all or nothing"),
])
def test_bad_urls_exit_2_with_one_line(run_ingest: Any, tmp_path: Path, args: list[str],
                                       needle: str) -> None:
    if needle.endswith("[gcs]'") and _installed("google.cloud.storage"):
        pytest.skip("google-cloud-storage is installed here")
    sink = [] if any("sftp" in a for a in args) else ["--sink-opt", f"path={tmp_path / 'out'}"]
    done = run_ingest("--source", "file", "--sink", "file", *sink, *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and needle in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.aws
def test_glob_matching_nothing_exits_2(s3: tuple[Any, str], aws_env: dict[str, str],
                                       run_ingest: Any, tmp_path: Path) -> None:
    _, bucket = s3
    done = run_ingest("--source", "file", "--source-opt", f"path=s3://{bucket}/none/*.jsonl.gz",
                      "--sink", "file", "--sink-opt", f"path={tmp_path / 'out'}", env=aws_env)
    assert done.returncode == 2
    assert done.stderr == (f"ingest: error: source 'file' option 'path': no files match "
                           f"'s3://{bucket}/none/*.jsonl.gz'\n")


@pytest.mark.aws
def test_missing_object_or_bucket_exits_2(s3: tuple[Any, str], aws_env: dict[str, str],
                                          run_ingest: Any, tmp_path: Path) -> None:
    client, bucket = s3
    client.put_object(Bucket=bucket, Key="in.jsonl", Body=b'{"a": 1}\n')
    for source, sink, needle in (
            (f"s3://{bucket}/none.jsonl", str(tmp_path / "out"), "source 'file' option 'path': "
             f"cannot read 's3://{bucket}/none.jsonl'"),
            (f"s3://{bucket}/in.jsonl", f"s3://{bucket}-none/out/", "sink 'file' option "
             f"'path': cannot write to 's3://{bucket}-none/out/'")):
        done = run_ingest("--source", "file", "--source-opt", f"path={source}", "--sink",
                          "file", "--sink-opt", f"path={sink}", env=aws_env)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and needle in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_missing_smart_open_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "smart_open", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'parquet-ingestor\[urls\]'"):
        UrlStore("s3://bucket/x.jsonl", "source 'file' option 'path'")


@pytest.mark.parametrize(("pattern", "key", "matches"), [
    ("a/*.jsonl.gz", "a/x.jsonl.gz", True),
    ("a/*.jsonl.gz", "a/b/x.jsonl.gz", False),
    ("a/**/*.gz", "a/b/c/x.gz", True),
    ("a/**/*.gz", "a/x.gz", True),
    ("a/x?.gz", "a/x1.gz", True),
    ("a/[!x]1.gz", "a/x1.gz", False),
    ("a/[xy]1.gz", "a/y1.gz", True),
    ("a/x+(1).gz", "a/x+(1).gz", True),
])
def test_glob_pattern(pattern: str, key: str, matches: bool) -> None:
    assert bool(glob_pattern(pattern).fullmatch(key)) is matches
