"""--memory-limit: the limit, its cgroup default, the pressure signal, bad input, and a real run
whose resident memory stays under the limit (sampled from /proc) without losing or duplicating
a row."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.memory import (
    BATCH_FACTOR,
    CGROUP_SHARE,
    MIN_BATCH_BYTES,
    MemoryLimit,
    cgroup_limit,
    default_limit,
    rss,
)

MiB = 1 << 20
INGEST = str(Path(sys.executable).with_name("ingest"))


def test_cgroup_v2_v1_and_no_limit(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text("max\n")
    assert cgroup_limit(str(v2)) is None and default_limit(str(v2)) is None
    (v2 / "memory.max").write_text(f"{1024 * MiB}\n")
    assert cgroup_limit(str(v2)) == 1024 * MiB
    assert default_limit(str(v2)) == int(1024 * MiB * CGROUP_SHARE)
    v1 = tmp_path / "v1" / "memory"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1: unlimited
    assert cgroup_limit(str(tmp_path / "v1")) is None
    (v1 / "memory.limit_in_bytes").write_text(f"{512 * MiB}\n")
    assert cgroup_limit(str(tmp_path / "v1")) == 512 * MiB
    assert cgroup_limit(str(tmp_path / "none")) is None


def test_pressure_gauges_and_batch_sizes() -> None:
    used = [150 * MiB]
    memory = MemoryLimit(300 * MiB, measure=lambda: used[0], baseline=100 * MiB)
    assert memory.pressure() == pytest.approx(0.5)
    assert memory.gauges() == {"memory_limit_bytes": 300 * MiB, "memory_rss_bytes": 150 * MiB,
                               "memory_pressure": pytest.approx(0.5)}
    assert not memory.would_pass(150 * MiB) and memory.would_pass(150 * MiB + 1)
    # 200 MiB of room for 9 batches at BATCH_FACTOR x their input: 5 MiB batches fit as they are
    assert memory.batch_bytes(5 * MiB, 9) == 5 * MiB
    assert memory.batch_bytes(64 * MiB, 9) == 200 * MiB // (BATCH_FACTOR * 9)
    assert memory.batch_bytes(64 * MiB, 10_000) == MIN_BATCH_BYTES
    off = MemoryLimit(None, measure=lambda: 10 * MiB)
    assert off.pressure() == 0.0 and not off.would_pass(1 << 40)
    assert off.batch_bytes(64 * MiB, 9) == 64 * MiB
    assert off.gauges()["memory_limit_bytes"] == 0
    assert rss() > 0


def test_a_limit_below_one_batch_is_a_config_error() -> None:
    memory = MemoryLimit(92 * MiB, measure=lambda: 90 * MiB)
    with pytest.raises(ConfigError, match=r"^--memory-limit: 92MiB is below what one batch "
                                          r"needs: 94MiB \(the process's 90MiB \+ 4 x a batch "
                                          r"of 1.0MiB\)$"):
        memory.check(5 * MiB)
    MemoryLimit(94 * MiB, measure=lambda: 90 * MiB).check(5 * MiB)
    memory.check(256 << 10)  # smaller batches than batches shrink to need less


def one_line_error(*args: str) -> str:
    proc = subprocess.run([INGEST, "--source", "file", "--source-opt", f"path={__file__}",
                           "--sink", "file", "--sink-opt", "path=/nonexistent-unused", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_bad_memory_and_open_file_options_exit_2_with_one_line() -> None:
    assert one_line_error("--memory-limit", "20MiB").startswith(
        "ingest: error: --memory-limit: 20MiB is below what one batch needs")
    assert one_line_error("--memory-limit", "lots").startswith("ingest: error: --memory-limit")
    assert one_line_error("--target-file-size", "64MiB", "--max-open-files", "0") == (
        "ingest: error: --max-open-files: '0' is below the minimum 1")
    assert one_line_error("--target-file-size", "1MiB", "--encoder-opt",
                          "row_group_bytes=4MiB") == (
        "ingest: error: --target-file-size: 1MiB is below the encoder's row-group size of "
        "4MiB (its option row_group_bytes)")
    # --max-file-age above a source's hold budget: tests/test_open_files.py (SQS declares one)


def events(path: Path, n: int) -> None:
    pad = "x" * 250
    with open(path, "w") as handle:
        handle.write("".join(f'{{"id":"e{i}","user":{i % 9973},"type":"t{i % 7}",'
                             f'"amount":{i % 1000}.5,"payload":"{pad}{i}"}}\n'
                             for i in range(n)))


def peak_rss_of(argv: list[str]) -> int:
    """Run ``argv``; its peak resident size (VmHWM), sampled from /proc while it runs."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        status = f"/proc/{proc.pid}/status"
        while not done.wait(0.01):
            try:
                with open(status, "rb") as handle:
                    for line in handle:
                        if line.startswith(b"VmHWM:"):
                            peak = max(peak, int(line.split()[1]) * 1024)
            except (OSError, ValueError, IndexError):
                pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate(timeout=300)
    done.set()
    sampler.join()
    assert proc.returncode == 0, err.decode()
    return peak


def ids_written(out: Path) -> list[str]:
    ids: list[str] = []
    for path in sorted(out.rglob("*.parquet")):
        ids += pq.read_table(path, columns=["id"]).column("id").to_pylist()
    return ids


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_memory_limit_holds_a_run_that_peaks_far_above_it(tmp_path: Path) -> None:
    n = 600_000  # ~197 MB of JSON lines
    data = tmp_path / "events.jsonl"
    events(data, n)
    expected = sorted(f"e{i}" for i in range(n))
    common = [INGEST, "--source", "file", "--source-opt", f"path={data}", "--sink", "file",
              "--sink-opt", "fsync=false", "--batch-max-bytes", "100MiB", "--log-level",
              "WARNING"]
    free = peak_rss_of([*common, "--sink-opt", f"path={tmp_path / 'free'}"])
    assert free > 600 * MiB  # what the limit has to hold back
    assert sorted(ids_written(tmp_path / "free")) == expected
    limited = peak_rss_of([*common, "--sink-opt", f"path={tmp_path / 'limited'}",
                           "--memory-limit", "300MiB"])
    assert limited < 330 * MiB, f"peak {limited / MiB:.0f} MiB (without the limit: {free / MiB:.0f})"
    assert sorted(ids_written(tmp_path / "limited")) == expected  # every row once
