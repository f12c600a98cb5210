"""The reliability kit: run the real ``ingest`` CLI as a subprocess
against moto's server (optionally through a fault-injecting HTTP proxy), and read every output
back with pyarrow to check event ids one by one.

Nothing here imports the project's own modules: the suite sees the product only from outside.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

CLI = "from parquet_ingestor.cli import main; main()"

# ------------------------------------------------------------------------------------ events


def make_events(n: int, seed: int = 20240501) -> list[bytes]:
    """``n`` realistic JSON events (bytes, one object each, every one with a unique "id")."""
    from parquet_ingestor.sample import iter_events  # test data, not the product under test

    return list(iter_events(n, seed))


def event_id(line: bytes) -> str:
    return str(json.loads(line)["id"])


def pack(events: Sequence[bytes], per_message: int) -> list[bytes]:
    """JSON lines: ``per_message`` events per message body."""
    return [b"\n".join(events[i:i + per_message]) for i in range(0, len(events), per_message)]


# ------------------------------------------------------------------------------------ SQS / S3


def clients(endpoint: str) -> tuple[Any, Any]:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5})
    return (boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", config=config),
            boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=config))


def make_queue(sqs: Any, name: str, *, visibility: int = 3, dlq_max_receive: int | None = None,
               fifo: bool = False) -> tuple[str, str | None]:
    """A queue (and, with ``dlq_max_receive``, its dead-letter queue); returns both URLs."""
    suffix = ".fifo" if fifo else ""
    attrs: dict[str, str] = {"VisibilityTimeout": str(visibility)}
    if fifo:
        attrs["FifoQueue"] = "true"
    dlq_url = None
    if dlq_max_receive is not None:
        dlq_attrs = {"FifoQueue": "true"} if fifo else {}
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq{suffix}", Attributes=dlq_attrs)[
            "QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        attrs["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": arn, "maxReceiveCount": str(dlq_max_receive)})
    url = sqs.create_queue(QueueName=name + suffix, Attributes=attrs)["QueueUrl"]
    return url, dlq_url


def send(sqs: Any, url: str, bodies: Iterable[bytes | str], group: str | None = None) -> int:
    """Send bodies in batches of at most 10 entries and 200 KiB; returns how many were sent."""
    batch: list[dict[str, Any]] = []
    size = 0
    sent = 0

    def flush() -> None:
        nonlocal batch, size, sent
        if batch:
            response = sqs.send_message_batch(QueueUrl=url, Entries=batch)
            assert not response.get("Failed"), response.get("Failed")
            sent += len(batch)
        batch, size = [], 0

    for i, body in enumerate(bodies):
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        n = len(text.encode("utf-8"))
        if batch and (len(batch) == 10 or size + n > 200 * 1024):
            flush()
        entry: dict[str, Any] = {"Id": str(len(batch)), "MessageBody": text}
        if group is not None:
            entry["MessageGroupId"] = group
            entry["MessageDeduplicationId"] = f"{group}-{i}"
        batch.append(entry)
        size += n
    flush()
    return sent


def queue_depth(sqs: Any, url: str) -> tuple[int, int]:
    """(ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible)."""
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(
        attrs["ApproximateNumberOfMessagesNotVisible"])


def wait_queue_empty(sqs: Any, url: str, timeout: float = 15.0) -> tuple[int, int]:
    """Poll the queue depth until both counts are 0 or ``timeout`` passes; returns the last."""
    deadline = time.monotonic() + timeout
    depth = queue_depth(sqs, url)
    while depth != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.5)
        depth = queue_depth(sqs, url)
    return depth


def drain(sqs: Any, url: str, wait: float = 2.0) -> list[str]:
    """Receive and delete everything visible in a queue (e.g. a DLQ); returns the bodies."""
    bodies: list[str] = []
    idle_until = time.monotonic() + wait
    while time.monotonic() < idle_until:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  VisibilityTimeout=30).get("Messages", [])
        if got:
            idle_until = time.monotonic() + wait
        for m in got:
            bodies.append(m["Body"])
        if got:
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    return bodies


@dataclass
class Output:
    """Everything written under one prefix: rows (as dicts), per-file metadata, other objects."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, dict[str, str]] = field(default_factory=dict)
    others: dict[str, bytes] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [str(r["id"]) for r in self.rows]

    def duplicates(self) -> int:
        return len(self.ids) - len(set(self.ids))


def _parquet_rows(data: bytes) -> tuple[list[dict[str, Any]], dict[str, str]]:
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(io.BytesIO(data))
    meta = {k.decode(): v.decode() for k, v in (handle.metadata.metadata or {}).items()}
    return handle.read().to_pylist(), meta


def read_s3(s3: Any, bucket: str, prefix: str = "") -> Output:
    """Read every object under ``prefix`` back: ``*.parquet`` row by row, the rest as bytes."""
    out = Output()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            data = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            if obj["Key"].endswith(".parquet"):
                rows, meta = _parquet_rows(data)
                out.rows.extend(rows)
                out.files[obj["Key"]] = meta
            else:
                out.others[obj["Key"]] = data
    return out


def read_tree(root: Path) -> Output:
    """Read every committed file under a file sink's root (hidden temporaries are ignored)."""
    out = Output()
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        key = path.relative_to(root).as_posix()
        if path.name.endswith(".parquet"):
            rows, meta = _parquet_rows(path.read_bytes())
            out.rows.extend(rows)
            out.files[key] = meta
        else:
            out.others[key] = path.read_bytes()
    return out


def error_records(out: Output) -> list[dict[str, Any]]:
    """The JSON lines of every error-sink file in ``out.others``."""
    records = []
    for data in out.others.values():
        records.extend(json.loads(line) for line in data.splitlines() if line.strip())
    return records


def assert_same_events(rows: Sequence[dict[str, Any]], events: Sequence[bytes]) -> None:
    """Each written row equals its input event field by field (nulls the event lacks aside)."""
    by_id = {str(r["id"]): r for r in rows}
    for line in events:
        original = json.loads(line)
        row = by_id[original["id"]]
        got = {k: v for k, v in row.items() if k in original or v is not None}
        assert got == original, f"event {original['id']} changed on the way"


# ------------------------------------------------------------------------------------ ingest


@dataclass
class Run:
    """A finished ``ingest`` process: exit code and what it printed."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json_logs(self) -> list[dict[str, Any]]:
        logs = []
        for line in self.stderr.splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    logs.append(json.loads(line))
        return logs

    def stopped(self) -> dict[str, Any]:
        """The final "stopped" log record (needs ``--log-format json``)."""
        found = [r for r in self.json_logs() if r.get("event") == "stopped"]
        assert found, f"no 'stopped' line in:\n{self.stderr[-3000:]}"
        return found[-1]


def ingest_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith("INGEST_")}
    env.update(extra)
    return env


class Ingest:
    """One ``ingest`` subprocess whose output goes to files (no pipe can fill up and block it)."""

    def __init__(self, args: Sequence[str], env: dict[str, str], logdir: Path) -> None:
        logdir.mkdir(parents=True, exist_ok=True)
        n = len(list(logdir.glob("*.out")))
        self._out = logdir / f"run{n}.out"
        self._err = logdir / f"run{n}.err"
        with self._out.open("wb") as out, self._err.open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-c", CLI, *args], env=env,
                                         cwd=logdir, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def wait(self, timeout: float) -> Run:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"ingest still running after {timeout}s:\n"
                                 f"{self._err.read_text(errors='replace')[-3000:]}") from None
        return Run(code, self._out.read_text(errors="replace"),
                   self._err.read_text(errors="replace"))

    def stderr_so_far(self) -> str:
        return self._err.read_text(errors="replace")


def run_ingest(args: Sequence[str], env: dict[str, str], logdir: Path,
               timeout: float = 120) -> Run:
    return Ingest(args, env, logdir).wait(timeout)


def sqs_args(queue_url: str, *, visibility: int = 3, wait_time: int = 1,
             pollers: int = 2) -> list[str]:
    """Source options for an SQS run of JSON-lines messages.

    Tests that demand *exactly* once use ``pollers=1``: moto's ReceiveMessage is not atomic, so
    two concurrent long polls can both get the same message (as real standard queues
    occasionally do too); that duplicate would be the emulator's, not ours.
    """
    return ["--source", "sqs", "--source-opt", f"queue_url={queue_url}",
            "--source-opt", f"pollers={pollers}",
            "--source-opt", f"visibility_timeout={visibility}s",
            "--source-opt", f"wait_time={wait_time}s",
            "--transformer", "json", "--transformer-opt", "lines=true"]


def s3_args(bucket: str, prefix: str = "out/", flag: str = "--sink", **opts: str) -> list[str]:
    args = [flag, "s3", f"{flag}-opt", f"bucket={bucket}", f"{flag}-opt", f"prefix={prefix}"]
    for k, v in opts.items():
        args += [f"{flag}-opt", f"{k}={v}"]
    return args


# ------------------------------------------------------------------------------------ proxy

S3_WRITE = "s3_write"          # PutObject, UploadPart, CompleteMultipartUpload
SQS_DELETE = "sqs_delete"      # DeleteMessageBatch / DeleteMessage
SQS_RECEIVE = "sqs_receive"    # ReceiveMessage
KINDS = (S3_WRITE, SQS_DELETE, SQS_RECEIVE)
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
        "upgrade", "content-length"}


def classify(method: str, path: str, headers: Any) -> str:
    """The kind of fault a request can receive: S3 write, SQS delete, SQS receive, or other."""
    target = headers.get("X-Amz-Target") or ""
    if target:
        op = target.rsplit(".", 1)[-1]
        if op in ("DeleteMessageBatch", "DeleteMessage"):
            return SQS_DELETE
        if op == "ReceiveMessage":
            return SQS_RECEIVE
        return "sqs_other"
    query = parse_qs(urlsplit(path).query, keep_blank_values=True)
    if method == "PUT" and "x-amz-copy-source" not in {k.lower() for k in headers}:
        return S3_WRITE  # PutObject, or UploadPart with partNumber & uploadId
    if method == "POST" and "uploadId" in query:
        return S3_WRITE  # CompleteMultipartUpload
    return "other"


class FaultProxy:
    """An HTTP proxy on loopback in front of moto that fails a share of requests with 500s
    (and, with ``delays``, holds each request of a kind that long before passing it on).

    ``rates`` maps a kind to the probability that one of its requests fails; ``outage(kind, s)``
    fails every request of that kind for ``s`` seconds. A share ``after_rate`` of the injected
    faults is applied *after* forwarding (the work is done upstream but the answer is lost),
    the rest before (the request never reaches moto). ``injected`` counts what was done.
    """

    def __init__(self, upstream: str, rates: dict[str, float] | None = None, seed: int = 1,
                 after_rate: float = 0.0, delays: dict[str, float] | None = None) -> None:
        self.upstream = urlsplit(upstream)
        self.rates = dict(rates or {})
        self.delays = dict(delays or {})  # kind -> seconds each request waits before it goes on
        self.after_rate = after_rate
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.seen: Counter[str] = Counter()
        self.outages: dict[str, float] = {}
        self.enabled = True
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy.handle(self)

            do_PUT = do_POST = do_HEAD = do_DELETE = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def outage(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.outages[kind] = time.monotonic() + seconds

    def _decide(self, kind: str) -> str | None:
        """None (forward), "before" or "after"."""
        with self.lock:
            self.seen[kind] += 1
            if not self.enabled:
                return None
            down = self.outages.get(kind, 0.0) > time.monotonic()
            if down or self.rng.random() < self.rates.get(kind, 0.0):
                self.injected[kind] += 1
                if down:
                    self.injected[kind + "_outage"] += 1
                return "after" if self.rng.random() < self.after_rate else "before"
        return None

    @staticmethod
    def _read_body(req: BaseHTTPRequestHandler) -> bytes:
        if "chunked" in (req.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(req.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while req.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(req.rfile.read(size))
                req.rfile.readline()
            return b"".join(chunks)
        length = int(req.headers.get("Content-Length") or 0)
        return req.rfile.read(length) if length else b""

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port,
                                              timeout=60)
            self._local.conn = conn
        return conn

    def _forward(self, req: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list, bytes]:
        headers = {k: v for k, v in req.headers.items() if k.lower() not in _HOP}
        if body or req.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        for attempt in range(2):
            conn = self._conn()
            try:
                conn.request(req.command, req.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, resp.getheaders(), data
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        body = self._read_body(req)
        kind = classify(req.command, req.path, req.headers)
        fault = self._decide(kind)  # counts it in ``seen`` on arrival
        if self.delays.get(kind):
            time.sleep(self.delays[kind])  # a slow network: the request arrives late, whole
        if fault == "before":
            self._fail(req, kind)
            return
        status, headers, data = self._forward(req, body)
        if fault == "after":
            self._fail(req, kind)
            return
        req.send_response(status)
        for k, v in headers:
            if k.lower() not in _HOP:
                req.send_header(k, v)
        if req.command == "HEAD":
            length = dict((k.lower(), v) for k, v in headers).get("content-length", "0")
            req.send_header("Content-Length", length)
            req.end_headers()
            return
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    @staticmethod
    def _fail(req: BaseHTTPRequestHandler, kind: str) -> None:
        if kind.startswith("sqs"):
            data = json.dumps({"__type": "InternalError", "message": "injected fault"}).encode()
            ctype = "application/x-amz-json-1.0"
        else:
            data = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code>"
                    b"<Message>injected fault</Message></Error>")
            ctype = "application/xml"
        req.send_response(500)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(data)



def env_for(aws_env: dict[str, str], endpoint: str | None = None, **extra: str) -> dict[str, str]:
    """The ``ingest`` subprocess environment, optionally pointed at a proxy instead of moto."""
    env = ingest_env(aws_env, **extra)
    if endpoint is not None:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env
