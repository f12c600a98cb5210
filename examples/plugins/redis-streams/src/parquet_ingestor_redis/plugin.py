"""Registers the ``redis-streams`` source. Imported by every ``ingest`` command, so it stays
light: redis-py is imported only when the source is built (the factory is a string)."""

from __future__ import annotations

from typing import Any

from parquet_ingestor import Option, hookimpl

OPTIONS = (
    Option("url", default="redis://127.0.0.1:6379/0",
           help="redis:// or rediss:// URL of the server (put the password in 'password')"),
    Option("password", secret=True, help="password (AUTH); never printed"),
    Option("stream", required=True, help="key of the stream to read"),
    Option("group", default="parquet-ingestor",
           help="consumer group; processes in one group share the stream's entries"),
    Option("consumer", help="this process's name in the group [default: HOSTNAME-PID]"),
    Option("block", "duration", default="2s", min=0,
           help="longest wait of one XREADGROUP for new entries"),
    Option("count", "int", default=1000, min=1, help="most entries read per call"),
    Option("claim_idle", "duration", default="5m", min=0.01,
           help="take over (XAUTOCLAIM) entries pending longer than this: their consumer died; "
                "also how long an entry nacked without a delay waits before it comes back"),
    Option("create", "bool", default=True,
           help="create the stream and the group when missing (XGROUP CREATE ... MKSTREAM)"),
    Option("start_id", default="0",
           help="where a group this source creates starts: 0 = the whole stream, $ = new entries"),
    Option("field", default="body",
           help="entry field holding the message body; '*' = all fields as one JSON object"),
    Option("delete", "bool", default=False, help="also XDEL entries once they are acknowledged"),
    Option("nack", default="pending", choices=("pending", "readd"),
           help="give back by leaving the entry pending (redelivered after claim_idle, or after "
                "the nack delay by this process) or by re-adding it at the end of the stream"),
)


@hookimpl
def ingest_register_sources(register: Any) -> None:
    register("redis-streams", "parquet_ingestor_redis.source:RedisStreamsSource",
             options=OPTIONS,
             help="Redis Streams via a consumer group: XREADGROUP, XACK after the write")
