"""The Python API end to end, in memory, no AWS: a list of messages in, Parquet files out.

    python examples/basic.py [OUTPUT_DIR]

Messages come from ``ListSource`` (a finite in-memory source, written below: a source is four
methods), go through the ``json`` transformer and the Parquet encoder, are partitioned by each
event's own time, written to a local directory with the ``file`` sink, and are read back with
pyarrow. One message is not JSON: it is rejected and, with no error sink, given back to the
source (nacked), which here just counts it.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq
from parquet_ingestor import BaseSource, BatchLimits, Message, Pipeline, PipelineSettings
from parquet_ingestor.builtins.file_sink import FileSink
from parquet_ingestor.builtins.json_transformer import JsonTransformer
from parquet_ingestor_parquet.encoder import ParquetEncoder


class ListSource(BaseSource):
    """Hands out a list of bodies once; records what was acknowledged and given back."""

    def __init__(self, bodies: list[str]) -> None:
        self.pending = [Message(f"m{i}", body.encode()) for i, body in enumerate(bodies)]
        self.acked: list[Message] = []
        self.nacked: list[Message] = []

    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        out, self.pending = self.pending[:max_messages], self.pending[max_messages:]
        return out

    def ack(self, messages: Sequence[Message]) -> None:  # called after the file is committed
        self.acked.extend(messages)

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        self.nacked.extend(messages)

    @property
    def exhausted(self) -> bool:  # a finite source: the run ends once it is drained
        return not self.pending


def sample_messages() -> list[str]:
    """Twelve events over two hours, and one malformed message."""
    events = [
        {"id": f"evt-{i:02d}", "created_at": f"2024-05-01T{10 + i // 6:02d}:{(i % 6) * 10:02d}:00Z",
         "user_id": 1000 + i, "type": "click" if i % 3 else "purchase", "amount": i * 1.5}
        for i in range(12)
    ]
    return [json.dumps(e) for e in events] + ["this message is not JSON"]


def main(out_dir: Path) -> int:
    source = ListSource(sample_messages())
    pipeline = Pipeline(
        source=source,
        sink=FileSink(str(out_dir)),
        encoder=ParquetEncoder(compression="zstd"),
        transformer=JsonTransformer(),
        settings=PipelineSettings(
            batch=BatchLimits(max_bytes=1 << 20, max_age=1.0),
            workers=2,
            partition_by="event:created_at",  # each record lands in its own hour
            key_template="dt=%Y-%m-%d/hour=%H/{uuid}.{ext}",
            exit_when_idle=1.0,
        ),
    )
    metrics = pipeline.run()  # returns once the source is drained

    snap = metrics.snapshot()
    print(f"{snap['received']:.0f} messages -> {snap['files_written']:.0f} files, "
          f"{snap['rows_written']:.0f} rows, {snap['rejected']:.0f} rejected")
    total = 0
    for info in sorted(pipeline.files, key=lambda f: f.key):
        table = pq.read_table(out_dir / info.key)
        total += table.num_rows
        print(f"\n{info.url}  ({table.num_rows} rows, {info.bytes} bytes)")
        for row in table.select(["id", "created_at", "type", "amount"]).to_pylist():
            print(f"  {row['id']}  {row['created_at']:%Y-%m-%d %H:%M}  {row['type']:<8} "
                  f"{row['amount']:6.2f}")
    print(f"\nread back {total} rows; acked {len(source.acked)}, nacked {len(source.nacked)}")
    return 0 if total == 12 else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(main(Path(sys.argv[1])))
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(main(Path(tmp)))
