"""Running a command as a child process and measuring it: wall time, CPU time and peak RSS.

Peak RSS comes from ``os.wait4`` on that one child (its own ``ru_maxrss``), so it is exact and
not mixed with other children of the harness. Output goes to temporary files (no pipe deadlock).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass
class Measured:
    """What one child process did."""

    argv: list[str]
    seconds: float
    cpu_seconds: float
    peak_rss: int  # bytes
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> Measured:
        if self.returncode != 0:
            raise RuntimeError(f"{' '.join(self.argv)} exited {self.returncode}:\n"
                               f"{self.stderr[-3000:]}")
        return self


def run_measured(
    argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None,
    timeout: float = 3600.0,
) -> Measured:
    """Run ``argv`` to completion; the child's own rusage gives peak RSS and CPU time."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, cwd=cwd,
                                env=dict(env) if env is not None else None)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(
            argv=list(argv),
            seconds=seconds,
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            peak_rss=usage.ru_maxrss * 1024,  # KiB on Linux
            returncode=proc.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


def compile_sources(packages: Sequence[str]) -> list[str]:
    """Compile the bytecode of ``packages`` that are imported from a source tree (the
    workspace's editable installs), as installing a wheel would (pip compiles at install;
    ``uv sync --compile-bytecode`` does site-packages only). Under ``PYTHONDONTWRITEBYTECODE``
    every measured ``ingest`` process would otherwise compile them again (~90 ms of CPU).
    Returns the directories compiled."""
    import compileall
    import importlib.util
    import sysconfig

    site = os.path.realpath(sysconfig.get_paths()["purelib"])
    done = []
    for name in packages:
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            folder = os.path.realpath(folder)
            if not folder.startswith(site + os.sep):
                compileall.compile_dir(folder, quiet=1)
                done.append(folder)
    return done


def parquet_rows(path: str) -> int:
    """Rows in every committed ``*.parquet`` file under ``path`` (read from the footers)."""
    import pyarrow.parquet as pq

    if os.path.isfile(path):
        return int(pq.read_metadata(path).num_rows)
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            if name.endswith(".parquet") and not name.startswith("."):
                total += pq.read_metadata(os.path.join(root, name)).num_rows
    return total


def mib(n: float) -> float:
    return n / (1 << 20)
