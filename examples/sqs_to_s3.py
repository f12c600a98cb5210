"""SQS -> Parquet -> S3 from Python, with every reliability knob spelled out.

    python examples/sqs_to_s3.py --queue-url URL --bucket BUCKET [--prefix events/]
                                 [--idle 10s] [--endpoint-url http://localhost:4566]

Runs until the queue has been empty for ``--idle`` (or until Ctrl-C / SIGTERM, which drains:
buffered messages are written and acknowledged before exit). Works against AWS, LocalStack,
moto or any S3/SQS-compatible endpoint: ``--endpoint-url`` or ``AWS_ENDPOINT_URL``.
Credentials come from the usual AWS chain (environment, profile, instance role).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

from parquet_ingestor import BatchLimits, Pipeline, PipelineSettings, RetryPolicy
from parquet_ingestor.builtins.json_transformer import JsonTransformer
from parquet_ingestor.logs import setup_logging
from parquet_ingestor.units import parse_duration
from parquet_ingestor_parquet.encoder import ParquetEncoder
from parquet_ingestor_s3.sink import S3Sink
from parquet_ingestor_sqs.source import SqsSource


def build(args: argparse.Namespace) -> Pipeline:
    """The pipeline: one SQS queue, Parquet files partitioned by event time, rejects to S3."""
    source = SqsSource(
        queue_url=args.queue_url,
        endpoint_url=args.endpoint_url,
        wait_time="5s",            # long poll: few empty receives, low cost
        visibility_timeout="30s",  # the lease; extended while a batch fills, so it can stay short
        max_in_flight=20_000,      # polling pauses when this many messages are unsettled
    )
    sink = S3Sink(bucket=args.bucket, prefix=args.prefix, endpoint_url=args.endpoint_url,
                  addressing_style="path" if args.endpoint_url else "auto")
    errors = S3Sink(bucket=args.bucket, prefix=args.error_prefix, endpoint_url=args.endpoint_url,
                    addressing_style="path" if args.endpoint_url else "auto")
    settings = PipelineSettings(
        batch=BatchLimits(max_bytes=64 << 20, max_records=0, max_age=args.batch_age),
        workers=4,
        partition_by=f"event:{args.time_field}",
        key_template="year=%Y/month=%m/day=%d/hour=%H/{uuid}.{ext}",
        exit_when_idle=args.idle,
        # a failed file is rewritten whole (same key): 6 tries over about a minute
        write_retry=RetryPolicy(attempts=6, base_delay=1.0, max_delay=30.0, jitter=0.5),
        # acks only after the file is committed; failed ones are retried alone
        ack_retry=RetryPolicy(attempts=5, base_delay=0.2, max_delay=5.0, jitter=0.5),
    )
    return Pipeline(source=source, sink=sink, encoder=ParquetEncoder(compression="zstd"),
                    transformer=JsonTransformer(lines=True), settings=settings,
                    error_sink=errors, names={"source": "sqs"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", default="events/")
    parser.add_argument("--error-prefix", default="errors/")
    parser.add_argument("--time-field", default="created_at",
                        help="event time field used for the hour partitions")
    parser.add_argument("--idle", type=parse_duration, default=10.0,
                        help="exit once the queue has been empty this long (e.g. 10s, 5m)")
    parser.add_argument("--batch-age", type=parse_duration, default=60.0,
                        help="flush a batch when its oldest message has waited this long")
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    args = parser.parse_args(argv)

    setup_logging("INFO")
    pipeline = build(args)

    def on_signal(signum: int, frame: Any) -> None:
        pipeline.stop()  # drain: write and acknowledge what is buffered, then return

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    snap = pipeline.run().snapshot()
    print(f"stopped ({pipeline.stopped_reason}): {snap['received']:.0f} messages, "
          f"{snap['files_written']:.0f} files, {snap['rows_written']:.0f} rows, "
          f"{snap['rejected']:.0f} rejected, {snap['acked']:.0f} acked")
    for info in pipeline.files:
        print(f"{info.url}\t{info.rows}")
    return 0 if snap["write_failures"] == 0 and snap["ack_failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
