"""Stopping a run on stdin as service managers do it: the signal goes to the whole process group
(systemd's ``KillMode=control-group``, ``uv run``, shell wrappers), so ``ingest`` may get it
twice. A stop drains: every line already read is written, exit 0. An abort (a second Ctrl-C
later) saves the lines read but not written to a spill file and says how many."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CLI = "from parquet_ingestor.cli import main; main()"
LINES = 20_000

# A file sink whose commits take 0.2 s: the pipeline falls behind stdin, so lines pile up in
# the reader's read-ahead (where a stop used to drop them).
SLOW_COMMIT_SINK = """
import time
from parquet_ingestor.builtins.file_sink import FileSink
from parquet_ingestor.hookspecs import hookimpl
from parquet_ingestor.options import Option


class SlowCommitSink(FileSink):
    def open(self, key, content_type, metadata):
        writer = super().open(key, content_type, metadata)
        commit = writer.commit

        def slow_commit():
            time.sleep(0.2)
            commit()

        writer.commit = slow_commit
        return writer


@hookimpl
def ingest_register_sinks(register):
    register("slowcommit", SlowCommitSink, options=[Option("path", required=True)])
"""


def _lines(n: int) -> bytes:
    return b"".join(json.dumps({"id": i, "pad": "x" * 40}).encode() + b"\n" for i in range(n))


def _unread(fd: int) -> int:
    """Bytes written into the pipe that the reader has not read yet (Linux FIONREAD)."""
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])


def _ids(out: Path) -> list[int]:
    ids = []
    for path in out.rglob("*.jsonl"):
        if not path.name.startswith("."):
            ids += [json.loads(line)["id"] for line in path.read_bytes().splitlines()]
    return ids


def _start(tmp_path: Path, site: Path, wrapper: list[str], *extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env["PYTHONPATH"] = str(site)
    err = (tmp_path / "stderr").open("wb")
    return subprocess.Popen(
        [*wrapper, "-c", CLI, "--source", "file", "--source-opt", "path=-",
         "--sink", "slowcommit", "--sink-opt", f"path={tmp_path / 'out'}", "--encoder", "jsonl",
         "--workers", "1", "--batch-max-bytes", "64KiB", *extra],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=tmp_path,
        start_new_session=True)  # its own process group, which we signal as a whole


def _feed_all(proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Write every line and wait until ingest has read them all (the pipe stays open)."""
    assert proc.stdin is not None
    proc.stdin.write(_lines(LINES))
    proc.stdin.flush()
    deadline = time.monotonic() + timeout
    while _unread(proc.stdin.fileno()):
        assert proc.poll() is None, "ingest exited early"
        assert time.monotonic() < deadline, "ingest did not read its input"
        time.sleep(0.05)


def _wait(proc: subprocess.Popen[bytes], tmp_path: Path, timeout: float = 120) -> tuple[int, str]:
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail("ingest did not stop:\n" + (tmp_path / "stderr").read_text()[-3000:])
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
    return code, (tmp_path / "stderr").read_text()


def _wrappers() -> list[tuple[str, list[str]]]:
    found = [("python", [sys.executable])]
    uv = shutil.which("uv")
    if uv:
        found.append(("uv run", [uv, "run", "--no-sync", "--project", str(ROOT), "python"]))
    return found


@pytest.mark.timeout(200)
@pytest.mark.parametrize(("wrapper", "sig"), [
    (w, s) for w in _wrappers() for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
], ids=lambda v: v[0] if isinstance(v, tuple) else getattr(v, "name", str(v)))
def test_group_signal_drains_every_line_read(
    tmp_path: Path, make_plugin: Callable[..., Path], wrapper: tuple[str, list[str]],
    sig: signal.Signals,
) -> None:
    site = make_plugin(dist="slow-commit", entry="slowcommit", code=SLOW_COMMIT_SINK)
    proc = _start(tmp_path, site, wrapper[1], "--batch-max-age", "1h")
    _feed_all(proc)
    os.killpg(proc.pid, sig)
    code, err = _wait(proc, tmp_path)

    assert code == 0, err[-3000:]
    assert "Traceback" not in err
    ids = _ids(tmp_path / "out")
    assert len(ids) == LINES, f"{LINES - len(set(ids))} lines lost, {len(ids) - len(set(ids))} twice"
    assert sorted(ids) == list(range(LINES))
    assert not list(tmp_path.glob("ingest-unwritten-*"))  # nothing needed saving


@pytest.mark.timeout(200)
def test_abort_saves_unwritten_lines_to_the_spill_file(
    tmp_path: Path, make_plugin: Callable[..., Path],
) -> None:
    site = make_plugin(dist="slow-commit", entry="slowcommit", code=SLOW_COMMIT_SINK)
    proc = _start(tmp_path, site, [sys.executable], "--batch-max-age", "1h",
                  "--source-opt", f"spill={tmp_path / 'spill.jsonl'}")
    _feed_all(proc)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(1.5)  # later than a duplicate delivery of the same Ctrl-C: a second press
    os.killpg(proc.pid, signal.SIGINT)
    code, err = _wait(proc, tmp_path)

    assert code == 130, err[-3000:]
    assert "Traceback" not in err
    written = _ids(tmp_path / "out")
    spilled = [json.loads(line)["id"]
               for line in (tmp_path / "spill.jsonl").read_bytes().splitlines()]
    assert spilled, "the abort wrote everything: the test did not abort mid-run"
    assert f"{len(spilled)} lines read but not written were saved to" in err
    # nothing lost; a line may be in both only if its file committed as the abort came
    assert set(written) | set(spilled) == set(range(LINES))
    assert len(written) == len(set(written))


# A file sink whose writes are slow (and say when the first one began): an abort lands while
# the Parquet encoder is writing.
SLOW_WRITE_SINK = """
import time
from parquet_ingestor.builtins.file_sink import FileSink
from parquet_ingestor.hookspecs import hookimpl
from parquet_ingestor.options import Option


class SlowWriteSink(FileSink):
    def open(self, key, content_type, metadata):
        writer = super().open(key, content_type, metadata)
        write = writer.write
        marker = self.root.parent / "writing"

        def slow_write(data):
            marker.touch()
            time.sleep(0.3)
            return write(data)

        writer.write = slow_write
        return writer


@hookimpl
def ingest_register_sinks(register):
    register("slowwrite", SlowWriteSink, options=[Option("path", required=True)])
"""


@pytest.mark.timeout(200)
def test_second_ctrl_c_during_a_parquet_write_prints_no_traceback(
    tmp_path: Path, make_plugin: Callable[..., Path],
) -> None:
    pytest.importorskip("parquet_ingestor_parquet")
    site = make_plugin(dist="slow-write", entry="slowwrite", code=SLOW_WRITE_SINK)
    source = tmp_path / "in.jsonl"  # ~10 MB of Parquet: many buffered writes
    source.write_bytes(b"".join(json.dumps({"id": i, "pad": os.urandom(48).hex()}).encode()
                                + b"\n" for i in range(100_000)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env["PYTHONPATH"] = str(site)
    with (tmp_path / "stderr").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", CLI, "--source", "file", "--source-opt", f"path={source}",
             "--sink", "slowwrite", "--sink-opt", f"path={tmp_path / 'out'}",
             "--encoder", "parquet", "--encoder-opt", "row_group_size=100"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env,
            cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not (tmp_path / "writing").exists():
        assert proc.poll() is None and time.monotonic() < deadline, (
            (tmp_path / "stderr").read_text()[-3000:])
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    time.sleep(1.2)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(60)
    err_text = (tmp_path / "stderr").read_text()

    assert code == 130, err_text[-3000:]
    assert "Traceback" not in err_text and "Error ignored" not in err_text, err_text[-3000:]
    loud = [line for line in err_text.splitlines() if " INFO " not in line]
    assert len(loud) == 2, loud  # the abort, and where the unwritten lines were saved
    assert "second SIGINT: aborting" in loud[0]
    assert "lines read but not written were saved to" in loud[1]


@pytest.mark.timeout(200)
def test_stdin_read_ahead_is_bounded_in_bytes(
    tmp_path: Path, make_plugin: Callable[..., Path],
) -> None:
    """200 KB lines and a sink that commits once a second: the reader must not queue what
    the pipeline cannot take (it held 10,000 lines: 2 GB of these)."""
    psutil = pytest.importorskip("psutil")
    site = make_plugin(dist="slow-commit", entry="slowcommit",
                       code=SLOW_COMMIT_SINK.replace("time.sleep(0.2)", "time.sleep(1.0)"))
    proc = _start(tmp_path, site, [sys.executable], "--batch-max-age", "1h")
    assert proc.stdin is not None
    line = json.dumps({"pad": "x" * 200_000}).encode() + b"\n"
    proc.stdin.write(line)
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while _unread(proc.stdin.fileno()):  # running and reading
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    child = psutil.Process(proc.pid)
    base = child.memory_info().rss

    def feed() -> None:
        try:
            for _ in range(750):  # 150 MB
                proc.stdin.write(line)  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError):
            pass

    import threading

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    peak = 0
    until = time.monotonic() + 8
    while time.monotonic() < until:
        peak = max(peak, child.memory_info().rss - base)
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    print(f"RSS growth while fed 150 MB faster than written: {peak / 2**20:.0f} MiB")
    assert peak < 64 * 2**20, f"RSS grew {peak / 2**20:.0f} MiB: the read-ahead is not bounded"
