"""``ingest demo``: SQS -> Parquet -> S3 on a local AWS emulator, with no account.

Starts moto's server on loopback, creates a queue (with a dead-letter queue) and a bucket, sends
sample events (a few malformed on purpose), runs the pipeline with the live status, then shows
the files written, a preview of their rows and where the rejected messages went. ``--keep DIR``
copies the bucket into DIR and ends with a command that reads it back once the emulator is gone.

The command is part of the core so it exists with the core alone; it then says what it needs
(the bundled sqs, s3 and parquet plugins and moto's server: the ``demo`` extra). boto3, moto and
pyarrow are imported only when it runs.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import shlex
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

import click

from .plugins import Kind, Registry, bundled_with, get_registry

BUCKET = "demo-lake"
QUEUE = "demo-events"
MALFORMED = [
    "this is not JSON at all",
    '{"id": "broken", "created_at": ',
    "[1, 2, 3]",
    '{"id": "only-a-key"} trailing words',
]
#: the components the demo runs with; each comes with a bundled plugin
NEEDS: tuple[tuple[Kind, str], ...] = (("source", "sqs"), ("encoder", "parquet"), ("sink", "s3"))
EXTRA = "pip install 'parquet-ingestor[demo]'"


def missing_requirements(registry: Registry) -> list[str]:
    """What this environment lacks for the demo, one phrase each (empty: ready to run)."""
    missing = []
    for kind, name in NEEDS:
        if name not in registry.components[kind]:
            bundled = bundled_with(kind, name)
            why = registry.missing_hint(bundled) if bundled else ""
            missing.append(f"the {name} {kind}" + ("" if why.startswith("it comes with")
                                                   else f" ({why})"))
    try:
        import moto.server  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        missing.append("moto's server")
    return missing


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@click.command("demo")
@click.option("--events", default=5000, show_default=True, help="sample events to send")
@click.option("--per-message", default=50, show_default=True,
              help="events packed as JSON lines into each SQS message")
@click.option("--keep", "keep", metavar="DIR", default=None,
              help="copy the bucket (events/ and errors/) into DIR before the emulator stops")
def demo_command(events: int, per_message: int, keep: str | None) -> None:
    """Run SQS -> Parquet -> S3 against a local AWS emulator (no account needed).

    Needs the sqs, s3 and parquet plugins and moto's server, which come with:

    \b
        pip install 'parquet-ingestor[demo]'
    """
    registry = get_registry()
    missing = missing_requirements(registry)
    if missing:
        raise click.ClickException(
            f"the demo needs the sqs, s3 and parquet plugins and moto's server; missing here: "
            f"{', '.join(missing)} ({EXTRA})")
    if events < 1 or per_message < 1:
        raise click.BadParameter("--events and --per-message must be at least 1")
    import boto3
    from moto.server import ThreadedMotoServer

    from .cli import _run
    from .config import ComponentChoice, RunConfig, build_pipeline
    from .logs import setup_logging
    from .sample import iter_events

    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update({"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint})
    os.environ.pop("AWS_PROFILE", None)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        click.echo(f"AWS emulator (moto) on {endpoint}")
        sqs = boto3.client("sqs", endpoint_url=endpoint)
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket=BUCKET)
        dlq_url = sqs.create_queue(QueueName=f"{QUEUE}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(QueueName=QUEUE, Attributes={"RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})})["QueueUrl"]
        lines = [body.decode() for body in iter_events(events)]
        bodies = ["\n".join(lines[i:i + per_message]) for i in range(0, len(lines), per_message)]
        bodies[len(bodies) // 3:len(bodies) // 3] = MALFORMED
        for i in range(0, len(bodies), 10):
            sqs.send_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(j), "MessageBody": body} for j, body in enumerate(bodies[i:i + 10])])
        click.echo(f"sent {len(lines):,} events in {len(bodies) - len(MALFORMED)} messages, "
                   f"plus {len(MALFORMED)} malformed messages, to {queue_url}")

        config = RunConfig(
            # one poller: moto (unlike SQS) may hand one message to two concurrent receives
            source=ComponentChoice("sqs", {"queue_url": queue_url, "wait_time": "1s",
                                           "pollers": 1}),
            transformer=ComponentChoice("json", {"lines": True}),
            encoder=ComponentChoice("parquet"),
            sink=ComponentChoice("s3", {"bucket": BUCKET, "prefix": "events/"}),
            error_sink=ComponentChoice("s3", {"bucket": BUCKET, "prefix": "errors/"}),
            pipeline={"partition_by": "event:created_at", "batch_max_age": "2s",
                      "exit_when_idle": "3s",
                      "key_template": "year=%Y/month=%m/day=%d/hour=%H/{uuid}.{ext}"},
        )
        setup_logging("WARNING")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        pipeline = build_pipeline(config, registry)
        click.echo("running SQS -> Parquet -> S3 ...")
        code = _run(pipeline, {})
        _show_results(s3)
        if keep is not None:
            _keep(s3, Path(keep))
        else:
            click.echo("\nThe emulator, and the files with it, go away now; "
                       "`ingest demo --keep DIR` keeps a copy.")
        if code:
            raise SystemExit(code)
    finally:
        server.stop()


def _show_results(s3: Any) -> None:
    import pyarrow.parquet as pq

    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    files = [o["Key"] for o in listed if o["Key"].startswith("events/")]
    errors = [o["Key"] for o in listed if o["Key"].startswith("errors/")]
    click.echo(f"\nFiles written ({len(files)}):")
    total = 0
    ids: set[str] = set()
    for key in sorted(files):
        data = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        ids.update(pq.read_table(io.BytesIO(data), columns=["id"]).column("id").to_pylist())
        meta = s3.head_object(Bucket=BUCKET, Key=key)["Metadata"]
        rows = int(meta.get("ingest-records", 0))
        total += rows
        click.echo(f"  s3://{BUCKET}/{key}  {rows:,} rows")
    click.echo(f"  total: {total:,} rows, {len(ids):,} distinct event ids")
    if files:
        data = s3.get_object(Bucket=BUCKET, Key=sorted(files)[0])["Body"].read()
        table = pq.read_table(io.BytesIO(data)).select(
            ["id", "created_at", "type", "amount", "country"]).slice(0, 5)
        click.echo(f"\nPreview of s3://{BUCKET}/{sorted(files)[0]}:")
        click.echo(table.to_pandas().to_string(index=False) if importlib.util.find_spec("pandas") is not None else
                   "\n".join(str(r) for r in table.to_pylist()))
    click.echo(f"\nRejected messages went to the error sink ({len(errors)} file(s)):")
    for key in errors:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        click.echo(f"  s3://{BUCKET}/{key}")
        for line in body.splitlines():
            record = json.loads(line)
            snippet = (record.get("body") or "")[:40]
            click.echo(f"    {record['reason'][:60]!s:<60}  body: {snippet!r}")


def _keep(s3: Any, folder: Path) -> None:
    """Copy every object of the demo bucket into ``folder`` (same keys), then say how to read it."""
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            target = folder / obj["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
            count += 1
    code = (f"import pyarrow.parquet as pq; t = pq.read_table({json.dumps(str(folder / 'events'))}); "
            'print(t.num_rows, "rows"); '
            '[print(r) for r in t.select(["id", "created_at", "type", "amount"]).to_pylist()[:3]]')
    click.echo(f"\nKept {count} file(s) in {folder}/ (events/ and errors/, as in the bucket).")
    click.echo("Read them back, with the emulator gone:")
    click.echo(f"  {_python()} -c {shlex.quote(code)}")


def _python() -> str:
    """``python`` when that is this interpreter on PATH, else this interpreter's path."""
    found = shutil.which("python")
    if found and os.path.realpath(found) == os.path.realpath(sys.executable):
        return "python"
    return shlex.quote(sys.executable)
