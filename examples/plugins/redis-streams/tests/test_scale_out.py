"""Scale-out: two ``ingest`` processes in one consumer group drain one stream together; one is
SIGKILLed midway and the survivor takes over its pending entries (XAUTOCLAIM after claim_idle).
At the end every entry is in the output (duplicates allowed, loss not) and nothing is pending."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from parquet_ingestor.testing import wait_for

GROUP = "scale"
AFTER_KILL = 1000  # entries published once the victim is dead, for the survivor alone
BUSY_WITHIN = 60  # seconds the victim has to write its first files (a loaded machine is slow)
# the feeder's cap if the victim never gets busy: more than ~1,600 entries/s for BUSY_WITHIN s
MAX_ENTRIES = 120_000


def pending_of(client: redis.Redis, stream: str) -> dict[str, int]:
    return {c["name"].decode(): int(c["pending"])
            for c in client.xpending(stream, GROUP)["consumers"]}


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_consumers_one_killed_survivor_takes_over(
        redis_url: str, stream: str, client: redis.Redis, tmp_path: Path,
        ingest_command: Any, read_output: Any) -> None:
    client.xgroup_create(stream, GROUP, "0", mkstream=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}

    def start(consumer: str) -> subprocess.Popen[str]:
        log = open(tmp_path / f"{consumer}.log", "w")  # noqa: SIM115 - the child writes it
        return subprocess.Popen(ingest_command(
            "--source", "redis-streams", "--source-opt", f"url={redis_url}",
            "--source-opt", f"stream={stream}", "--source-opt", f"group={GROUP}",
            "--source-opt", f"consumer={consumer}", "--source-opt", "block=100ms",
            "--source-opt", "count=50", "--source-opt", "claim_idle=1500ms",
            "--source-opt", "create=false",
            "--transformer", "json", "--transformer-opt", "add_attributes=message_id",
            "--encoder", "jsonl", "--sink", "file", "--sink-opt", f"path={tmp_path / 'out' / consumer}",
            "--sink-opt", "fsync=false", "--batch-max-age", "700ms", "--workers", "2"),
            stdout=log, stderr=subprocess.STDOUT, text=True, env=env)

    victim, survivor = start("victim"), start("survivor")
    try:
        wait_for(lambda: {c["name"].decode() for c in client.xinfo_consumers(stream, GROUP)}
                 >= {"victim", "survivor"}, 30, "both consumers to join the group")

        published: list[str] = []

        killed = threading.Event()

        def feed() -> None:
            # A steady ~1,600 entries/s until the victim is dead (so it always holds some when
            # the kill lands, however slow this machine is), then AFTER_KILL more.
            stop_at = MAX_ENTRIES
            for start_seq in range(0, MAX_ENTRIES, 50):
                if start_seq >= stop_at:
                    break
                if killed.is_set() and stop_at == MAX_ENTRIES:
                    stop_at = start_seq + AFTER_KILL
                pipe = client.pipeline(transaction=False)
                for seq in range(start_seq, start_seq + 50):
                    pipe.xadd(stream, {"body": f'{{"seq": {seq}}}'.encode()})
                published.extend(i.decode() for i in pipe.execute())
                time.sleep(0.03)

        feeder = threading.Thread(target=feed)
        feeder.start()
        def holding() -> bool:
            """The victim has written files and, frozen (SIGSTOP: it acks nothing more),
            still holds entries; else it runs on and we look again. Checked while it ran, its
            acks could land between the look and the kill (a CI flake)."""
            if pending_of(client, stream).get("victim", 0) == 0 or len(
                    list((tmp_path / "out" / "victim").rglob("*.jsonl"))) < 2:
                return False
            victim.send_signal(signal.SIGSTOP)
            # two round trips: an ack already on its way is applied before the second
            if pending_of(client, stream).get("victim", 0) > 0 and \
                    pending_of(client, stream).get("victim", 0) > 0:
                return True
            victim.send_signal(signal.SIGCONT)
            return False

        wait_for(holding, BUSY_WITHIN, "the victim to be busy")
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        orphaned = pending_of(client, stream).get("victim", 0)
        killed.set()
        feeder.join(timeout=60)
        assert not feeder.is_alive()
        entries = len(published)
        assert entries < MAX_ENTRIES, "the feeder ran to its cap: the victim was killed late"

        def drained() -> bool:
            (group,) = client.xinfo_groups(stream)
            return (group["last-delivered-id"].decode() == published[-1]
                    and client.xpending(stream, GROUP)["pending"] == 0)

        wait_for(drained, 60, "the survivor to drain the stream and the victim's entries")
        survivor.send_signal(signal.SIGTERM)  # drains cleanly
        assert survivor.wait(timeout=30) == 0
    finally:
        for proc in (victim, survivor):
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    assert orphaned > 0, "the victim held no entries when it died: nothing was taken over"
    assert read_output(tmp_path / "out" / "victim"), "the victim wrote nothing before it died"
    rows = read_output(tmp_path / "out")
    written = {r["_message_id"] for r in rows}
    missing = set(published) - written
    assert not missing, f"{len(missing)} entries lost, e.g. {sorted(missing)[:3]}"
    assert {r["seq"] for r in rows} == set(range(entries))
    assert all(published[r["seq"]] == r["_message_id"] for r in rows)
    assert client.xpending(stream, GROUP)["pending"] == 0
    assert "took over" in (tmp_path / "survivor.log").read_text()
