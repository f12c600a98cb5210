"""``ingest demo``: SQS -> Parquet -> S3 on a local AWS emulator, with no account.

Starts moto's server on loopback, creates a queue (with a dead-letter queue) and a bucket, sends
sample events (a few malformed on purpose), runs the pipeline with the live status, then shows
the files written, a preview of their rows and where the rejected messages went.
Needs the ``demo`` extra: ``pip install 'parquet-ingestor[demo]'``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import click

BUCKET = "demo-lake"
QUEUE = "demo-events"
MALFORMED = [
    "this is not JSON at all",
    '{"id": "broken", "created_at": ',
    "[1, 2, 3]",
    '{"id": "only-a-key"} trailing words',
]


def sample_events(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Realistic-looking events spread over the last three hours."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    types = ["page_view", "click", "add_to_cart", "purchase", "signup"]
    countries = ["US", "GB", "DE", "FR", "JP", "BR", "IN"]
    return [
        {
            "id": f"evt-{i:06d}",
            "created_at": (now - timedelta(seconds=rng.randrange(3 * 3600))).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "user_id": rng.randrange(1, 1 << 36),
            "type": rng.choice(types),
            "amount": round(rng.random() * 200, 2),
            "country": rng.choice(countries),
            "tags": rng.sample(["web", "ios", "android", "promo", "vip"], rng.randrange(3)),
            "ctx": {"ip": f"10.0.{rng.randrange(256)}.{rng.randrange(1, 255)}", "ua": "demo/1.0"},
        }
        for i in range(count)
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@click.command("demo")
@click.option("--events", default=5000, show_default=True, help="sample events to send")
@click.option("--per-message", default=50, show_default=True,
              help="events packed as JSON lines into each SQS message")
def demo_command(events: int, per_message: int) -> None:
    """Run SQS -> Parquet -> S3 against a local AWS emulator (no account needed)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise click.ClickException(
            "the demo needs moto's server: pip install 'parquet-ingestor[demo]'") from None
    import boto3
    from parquet_ingestor.cli import _run
    from parquet_ingestor.config import ComponentChoice, RunConfig, build_pipeline
    from parquet_ingestor.logs import setup_logging
    from parquet_ingestor.plugins import get_registry

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
        rows = sample_events(events)
        bodies = ["\n".join(json.dumps(r) for r in rows[i:i + per_message])
                  for i in range(0, len(rows), per_message)]
        bodies[len(bodies) // 3:len(bodies) // 3] = MALFORMED
        for i in range(0, len(bodies), 10):
            sqs.send_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(j), "MessageBody": body} for j, body in enumerate(bodies[i:i + 10])])
        click.echo(f"sent {len(rows):,} events in {len(bodies) - len(MALFORMED)} messages, "
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
        pipeline = build_pipeline(config, get_registry())
        click.echo("running SQS -> Parquet -> S3 ...")
        code = _run(pipeline, {})
        _show_results(s3)
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
        click.echo(table.to_pandas().to_string(index=False) if _has_pandas() else
                   "\n".join(str(r) for r in table.to_pylist()))
    click.echo(f"\nRejected messages went to the error sink ({len(errors)} file(s)):")
    for key in errors:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        click.echo(f"  s3://{BUCKET}/{key}")
        for line in body.splitlines():
            record = json.loads(line)
            snippet = (record.get("body") or "")[:40]
            click.echo(f"    {record['reason'][:60]!s:<60}  body: {snippet!r}")


def _has_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True
