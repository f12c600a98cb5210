"""The ``ingest`` command as users run it: end to end, signals, one-line errors, light imports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor.testing import wait_for

CLI = "from parquet_ingestor.cli import main; main()"


def env_without_ingest(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.update(extra)
    return env


def stdin_ingest(out: Path, *extra: str, pythonpath: Sequence[Path] = (),
                 sink: str = "file") -> subprocess.Popen[bytes]:
    """``ingest`` reading a pipe we keep open; stderr goes to ``<out>.stderr``."""
    env = env_without_ingest()
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    with open(f"{out}.stderr", "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-c", CLI, "--source", "file", "--source-opt", "path=-",
             "--sink", sink, "--sink-opt", f"path={out}", "--encoder", "jsonl", *extra],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, env=env,
            cwd=out.parent)  # where a spill file of unwritten lines would go


def finish(proc: subprocess.Popen[bytes], out: Path, timeout: float = 30) -> tuple[int, str]:
    """Wait for the exit WITHOUT closing stdin (communicate() would send EOF)."""
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"ingest did not stop in {timeout}s; stderr:\n"
                    + Path(f"{out}.stderr").read_text())
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
    return code, Path(f"{out}.stderr").read_text()


def lines(start: int, n: int) -> bytes:
    return b"".join(json.dumps({"id": i, "v": "x" * 20}).encode() + b"\n"
                    for i in range(start, start + n))


# ---------------------------------------------------------------- end to end


def test_file_to_jsonl_every_line_accounted_for(
    tmp_path: Path, run_ingest: Any, events_file: Any,
    read_jsonl: Callable[[Path], list[dict[str, Any]]],
) -> None:
    path, ids = events_file(20_000)
    out = tmp_path / "out"
    proc = run_ingest("--source", "file", "--source-opt", f"path={path}", "--sink", "file",
                      "--sink-opt", f"path={out}", "--encoder", "jsonl",
                      "--batch-max-bytes", "1MiB", "--workers", "3")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    rows = read_jsonl(out)
    assert sorted(r["id"] for r in rows) == sorted(ids)
    assert len(rows) == len(ids)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 1  # batches of 1 MiB
    assert not [p for p in files if p.name.startswith(".")]  # no temp files left
    # records are written as they came in: compare one row in full
    first = json.loads(path.read_bytes().splitlines()[0])
    assert next(r for r in rows if r["id"] == first["id"]) == first


def test_gzip_output_and_bad_lines_to_error_sink(
    tmp_path: Path, run_ingest: Any, read_jsonl: Callable[[Path], list[dict[str, Any]]],
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"id": 1}\nnot json\n{"id": 2}\n[1]\n{"id": 3}\n')
    proc = run_ingest("--source", "file", "--source-opt", f"path={src}", "--sink", "file",
                      "--sink-opt", f"path={tmp_path / 'out'}", "--encoder", "jsonl",
                      "--encoder-opt", "compression=gzip", "--error-sink", "file",
                      "--error-sink-opt", f"path={tmp_path / 'errors'}")
    assert proc.returncode == 0, proc.stderr
    assert list((tmp_path / "out").rglob("*.jsonl.gz"))
    assert sorted(r["id"] for r in read_jsonl(tmp_path / "out")) == [1, 2, 3]
    errors = read_jsonl(tmp_path / "errors")
    assert sorted(e["body"] for e in errors) == ["[1]", "not json"]
    assert {e["source"] for e in errors} == {"file"}


def test_bad_lines_without_error_sink_exit_1(tmp_path: Path, run_ingest: Any) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"id": 1}\nnot json\n')
    proc = run_ingest("--source", "file", "--source-opt", f"path={src}", "--sink", "file",
                      "--sink-opt", f"path={tmp_path / 'out'}", "--encoder", "jsonl")
    assert proc.returncode == 1
    assert "could not be written" in proc.stderr


def test_stdin_until_eof(
    tmp_path: Path, run_ingest: Any, read_jsonl: Callable[[Path], list[dict[str, Any]]],
) -> None:
    proc = run_ingest("--source", "file", "--source-opt", "path=-", "--sink", "file",
                      "--sink-opt", f"path={tmp_path / 'out'}", "--encoder", "jsonl",
                      "--exit-when-idle", "30s", input=lines(0, 3000).decode())
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["id"] for r in read_jsonl(tmp_path / "out")) == list(range(3000))


def test_stdin_kept_open_exit_when_idle(
    tmp_path: Path, read_jsonl: Callable[[Path], list[dict[str, Any]]],
) -> None:
    out = tmp_path / "out"
    proc = stdin_ingest(out, "--exit-when-idle", "1s", "--batch-max-age", "1h")
    assert proc.stdin is not None
    proc.stdin.write(lines(0, 40))
    proc.stdin.flush()
    code, err = finish(proc, out)
    assert code == 0, err
    assert sorted(r["id"] for r in read_jsonl(out)) == list(range(40))


# ---------------------------------------------------------------- signals


# Signals must not be sent on a timer: a SIGTERM that lands before the CLI installs its handlers
# (imports on a loaded machine) kills the process, and one that lands before the lines were
# received stops the run without them. This plugin writes how many messages the pipeline has
# received to a file, from inside the run (so after the handlers are installed).
RUN_PROBE = """
import threading, time
from pathlib import Path
from parquet_ingestor.hookspecs import hookimpl

PATH = Path({path!r})


@hookimpl
def ingest_pipeline_started(pipeline):
    def report():
        while True:
            tmp = PATH.with_name(PATH.name + ".tmp")
            tmp.write_text(str(int(pipeline.metrics.snapshot().get("received", 0))))
            tmp.replace(PATH)
            time.sleep(0.02)

    threading.Thread(target=report, daemon=True).start()
"""


def make_probe(tmp_path: Path, make_plugin: Callable[..., Path]) -> tuple[Path, Callable[[], int]]:
    """(plugin folder, received()): received() is -1 until the run has started."""
    path = tmp_path / "probe-received"
    site = make_plugin(dist="run-probe", entry="probe", code=RUN_PROBE.format(path=str(path)))

    def received() -> int:
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            return -1

    return site, received


def test_sigterm_drains_batch_buffered_from_open_pipe(
    tmp_path: Path, read_jsonl: Callable[[Path], list[dict[str, Any]]],
    make_plugin: Callable[..., Path],
) -> None:
    """A large batch_max_age: only the signal flushes the batch; every line is written."""
    probe, received = make_probe(tmp_path, make_plugin)
    out = tmp_path / "out"
    proc = stdin_ingest(out, "--batch-max-age", "1h", "--log-level", "DEBUG", pythonpath=[probe])
    assert proc.stdin is not None
    proc.stdin.write(lines(0, 25))
    proc.stdin.flush()
    if not wait_for(lambda: received() == 25, 60):
        proc.kill()
        pytest.fail(f"received {received()} of 25 lines; " + finish(proc, out)[1])
    proc.stdin.write(lines(25, 25))  # a second write, into a run that is already receiving
    proc.stdin.flush()
    if not wait_for(lambda: received() == 50, 60):
        proc.kill()
        pytest.fail(f"received {received()} of 50 lines; " + finish(proc, out)[1])
    assert not out.exists() or not list(out.rglob("*.jsonl"))  # buffered, nothing flushed yet
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc, out)
    assert code == 0, err
    assert "Traceback" not in err
    assert sorted(r["id"] for r in read_jsonl(out)) == list(range(50))


SLOW_SINK = """
import os, time
from parquet_ingestor.builtins.file_sink import FileSink
from parquet_ingestor.hookspecs import hookimpl
from parquet_ingestor.options import Option


class SlowSink(FileSink):
    '''A file sink whose writes hang (marking that they started): to abort mid-write.'''

    def open(self, key, content_type, metadata):
        inner = super().open(key, content_type, metadata)
        root = self.root

        class Writer:
            def write(self, data):
                (root.parent / "write-started").touch()
                time.sleep(60)
                return inner.write(data)

            def commit(self):
                inner.commit()

            def abort(self):
                inner.abort()

        return Writer()


@hookimpl
def ingest_register_sinks(register):
    register("slow", SlowSink, options=[Option("path", required=True)])
"""


def test_second_signal_aborts_with_130(tmp_path: Path, make_plugin: Callable[..., Path]) -> None:
    site = make_plugin(dist="slow-sink", entry="slow", code=SLOW_SINK)
    probe, received = make_probe(tmp_path, make_plugin)
    out = tmp_path / "out"
    proc = stdin_ingest(out, "--batch-max-age", "1h", pythonpath=[site, probe], sink="slow")
    assert proc.stdin is not None
    proc.stdin.write(lines(0, 10))
    proc.stdin.flush()
    if not wait_for(lambda: received() == 10, 60):  # handlers installed, lines buffered
        proc.kill()
        pytest.fail(f"received {received()} of 10 lines; " + finish(proc, out)[1])
    proc.send_signal(signal.SIGTERM)  # drain: the flush starts and hangs in write
    started = wait_for(lambda: (tmp_path / "write-started").exists(), 60)
    if not started:
        proc.kill()
    assert started, finish(proc, out)[1]
    proc.send_signal(signal.SIGTERM)  # SIGTERM again: still a drain (a process group's)
    time.sleep(1.2)  # past the window in which a SIGINT is the same Ctrl-C delivered twice
    proc.send_signal(signal.SIGINT)
    code, err = finish(proc, out)
    assert code == 130, err
    assert "second SIGINT" in err
    # the hung write is abandoned: at most its hidden temp file stays, never a visible file
    assert [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")] == []


# ---------------------------------------------------------------- one-line errors

ERROR_CASES = [
    (["--source", "nope", "--sink", "file", "--sink-opt", "path=o"], "unknown source 'nope'"),
    (["--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
      "--sink-opt", "path=o", "--encoder", "avro"], "unknown encoder 'avro'"),
    (["--source", "file", "--source-opt", "paht=x", "--sink", "file", "--sink-opt", "path=o"],
     "source 'file' has no option 'paht'"),
    (["--source", "file", "--sink", "file", "--sink-opt", "path=o"],
     "source 'file' needs option 'path'"),
    (["--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
      "--sink-opt", "path=o", "--batch-max-bytes", "5XB"], "--batch-max-bytes"),
    (["--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
      "--sink-opt", "path=o", "--batch-max-age", "soon"], "--batch-max-age"),
    (["--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
      "--sink-opt", "path=o", "--workers", "0"], "--workers"),
    (["--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
      "--sink-opt", "path=o", "--key-template", "%Y/{nope}"], "{nope}"),
    (["--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
      "--sink-opt", "path=o", "--key-template", "%Y/%m/static.{ext}"], "--key-template"),
    (["--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
      "--sink-opt", "path=o", "--partition-by", "created_at"], "--partition-by"),
    (["--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
      "--sink-opt", "novalue"], "--sink-opt expects KEY=VALUE"),
    (["--source", "file", "--source-opt", "path=missing.jsonl", "--sink", "file",
      "--sink-opt", "path=o"], "'missing.jsonl' does not exist"),
    (["--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
      "--sink-opt", "path=o", "--on-missing-time", "drop"], "--on-missing-time"),
    (["--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
      "--sink-opt", "path=o", "--bogus-flag", "1"], "--bogus-flag"),
    (["--source", "file", "--source-opt", "path=in.jsonl"], "no sink given"),
    (["--sink-opt", "path=o", "--source", "file", "--source-opt", "path=in.jsonl"],
     "--sink-opt given without --sink"),
    (["--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
      "--sink-opt", "path=o", "--transformer-opt", "schema=missing.json"],
     "transformer 'json' option 'schema'"),
    (["--config", "nope.toml"], "--config"),
]


@pytest.mark.parametrize(("args", "needle"), ERROR_CASES, ids=[c[1] for c in ERROR_CASES])
def test_config_errors_exit_2_with_one_line(
    tmp_path: Path, run_ingest: Any, args: list[str], needle: str
) -> None:
    (tmp_path / "in.jsonl").write_text('{"id": 1}\n')
    proc = run_ingest(*args)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("ingest: error: ")
    assert needle in proc.stderr
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").rglob("*.jsonl"))


def test_version(run_ingest: Any) -> None:
    proc = run_ingest("--version")
    assert proc.returncode == 0 and "0.1.0" in proc.stdout


# ---------------------------------------------------------------- light imports

HEAVY = ("pyarrow", "boto3", "botocore", "smart_open", "fastparquet", "prometheus_client")
#: the run's machinery (and numpy, which pyarrow brings): imported when a run is built
RUN_ONLY = ("parquet_ingestor.runner", "parquet_ingestor.commit", "parquet_ingestor.pipeline",
            "parquet_ingestor.memory", "parquet_ingestor.openfiles", "parquet_ingestor.layout",
            "parquet_ingestor_parquet.encoder", "numpy")
PROBE = """
import sys
from parquet_ingestor.cli import main
try:
    main({args!r})
except SystemExit as exc:
    code = exc.code
heavy = [m for m in {heavy!r} if m in sys.modules]
print("RUN_ONLY=" + ",".join(m for m in {run_only!r} if m in sys.modules))
print("HEAVY=" + ",".join(heavy))
"""


@pytest.mark.parametrize("args", [["--help"], ["plugins"], ["plugins", "--json"]])
def test_help_and_plugins_do_not_import_heavy_libraries(args: list[str]) -> None:
    probe = PROBE.format(args=args, heavy=HEAVY, run_only=RUN_ONLY)
    proc = subprocess.run([sys.executable, "-c", probe],
                          capture_output=True, text=True, timeout=60, env=env_without_ingest())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY=", proc.stdout[-500:]
    assert proc.stdout.strip().splitlines()[-2] == "RUN_ONLY=", proc.stdout[-500:]
    assert "Usage" in proc.stdout or "builtins" in proc.stdout


def test_help_lists_pipeline_options(run_ingest: Any) -> None:
    proc = run_ingest("--help")
    assert proc.returncode == 0
    for flag in ("--batch-max-bytes", "--batch-max-age", "--partition-by", "--exit-when-idle",
                 "--source-opt", "--error-sink"):
        assert flag in proc.stdout


def test_validate_checks_and_exits_without_reading(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"a": 1}\n')
    out = tmp_path / "out"
    ok = subprocess.run(
        [sys.executable, "-c", "from parquet_ingestor.cli import main; main()", "--validate",
         "--source", "file", "--source-opt", f"path={source}", "--sink", "file",
         "--sink-opt", f"path={out}", "--encoder", "jsonl"],
        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "configuration OK" in ok.stdout and "source file" in ok.stdout
    assert not list(out.rglob("*.jsonl"))  # nothing was read or written
    bad = subprocess.run(
        [sys.executable, "-c", "from parquet_ingestor.cli import main; main()", "--validate",
         "--source", "file", "--source-opt", f"path={tmp_path / 'missing.jsonl'}",
         "--sink", "file", "--sink-opt", f"path={out}"],
        capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "path" in bad.stderr


# A sink whose construction takes seconds (a slow import or a remote check) and says when it
# has begun: a signal sent then lands during start-up, before the pipeline runs.
SLOW_START_SINK = """
import time
from pathlib import Path
from parquet_ingestor.builtins.file_sink import FileSink
from parquet_ingestor.hookspecs import hookimpl
from parquet_ingestor.options import Option


def build(path):
    (Path(path).parent / "building").touch()
    time.sleep(8)
    (Path(path).parent / "built").touch()
    return FileSink(path=path)


@hookimpl
def ingest_register_sinks(register):
    register("slowstart", build, options=[Option("path", required=True)])
"""


@pytest.mark.parametrize("signals", [[signal.SIGTERM], [signal.SIGINT], [signal.SIGINT] * 2])
def test_signal_during_start_up_stops_cleanly(
        tmp_path: Path, make_plugin: Callable[..., Path], signals: list[signal.Signals]) -> None:
    """One signal while plugins load or components are built: the run stops before receiving
    (exit 0, a log line, no traceback, the pending line left unread); two: exit 130 at once."""
    site = make_plugin(dist="slow-start", entry="slowstart", code=SLOW_START_SINK)
    out = tmp_path / "out"
    proc = stdin_ingest(out, pythonpath=[site], sink="slowstart")
    assert proc.stdin is not None
    proc.stdin.write(lines(0, 5))
    proc.stdin.flush()
    if not wait_for(lambda: (tmp_path / "building").exists(), 60):
        proc.kill()
        pytest.fail("the sink was never built: " + finish(proc, out)[1])
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(1.2)  # a second SIGINT within 1 s is the same Ctrl-C, delivered twice
    code, stderr = finish(proc, out, timeout=60)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    if len(signals) == 1:
        assert code == 0, stderr
        assert f"{signals[0].name} during start-up: stopping before receiving anything" in stderr
        assert "stopped (stopped): 0 messages" in stderr
    else:
        assert code == 130, stderr
        assert "second signal during start-up" in stderr
        assert not (tmp_path / "built").exists()  # left at once, not after the slow build
    assert not out.exists() or not list(out.rglob("*.jsonl"))
