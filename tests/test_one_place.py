"""Every input line ends in exactly one place (a regression guard for the randomized differential
test behind tests/test_fuzz_findings.py): random drifting JSON lines through ``ingest`` with a
few fixed seeds and options, then every line found written once with every value exactly (only
the conversions of docs/types.md) or in the error sink with its raw line, ``FILE:LINE`` id and
a reason. The helpers are in ``one_place.py``."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from one_place import Checker, check_run, generate, run_problems  # noqa: E402


@dataclass(frozen=True)
class Config:
    """One run (or two into one output, ``restart``) of ``ingest`` on generated lines."""

    seed: int
    lines: int
    workers: int = 1
    batch: str = "2KiB"
    target: str = "0"
    partition: bool = False  # --partition-by event:ts (ts becomes a time field)
    key_field: bool = False  # a {field:cat} key template
    fastparquet: bool = False
    compat: str = ""
    restart: bool = False

    def args(self) -> list[str]:
        a = ["--batch-max-bytes", self.batch, "--workers", str(self.workers),
             "--target-file-size", self.target]
        if self.partition:
            a += ["--partition-by", "event:ts"]
        if self.key_field:
            a += ["--key-template", "cat={field:cat}/%Y/{unix_ns}-{random}.{ext}"]
        if self.fastparquet:
            a += ["--encoder-opt", "engine=fastparquet"]
        if self.compat:
            a += ["--encoder-opt", f"compat={self.compat}"]
        return a


# Seeds picked for what their fields do (tests/one_place.py's kinds): mixed/epoch times in a
# time field, ints beyond int64, nested structs that grow, colliding names under s3tables,
# and, with 4 workers, types that depend on which batch comes first (rows vs errors vary).
CONFIGS = {
    "w1-partitioned-files-per-batch": Config(seed=29, lines=400, partition=True),
    "w4-big-files-key-field": Config(seed=21, lines=600, workers=4, target="64MiB",
                                     key_field=True),
    "w4-fastparquet-partitioned": Config(seed=15, lines=400, workers=4, batch="16KiB",
                                         partition=True, fastparquet=True),
    "w1-s3tables-key-field": Config(seed=4, lines=400, target="64MiB", key_field=True,
                                    compat="s3tables"),
    "w4-spark-restart": Config(seed=55, lines=300, workers=4, batch="16KiB", compat="spark",
                               restart=True),
    "w1-fastparquet-restart": Config(seed=5, lines=250, target="64MiB", fastparquet=True,
                                     restart=True),
}


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_every_line_ends_in_one_place_with_its_values(
        tmp_path: Path, run_ingest: Any, config: Config) -> None:
    out, err = tmp_path / "out", tmp_path / "err"
    inputs: list[tuple[Path, list[str]]] = []
    problems: list[str] = []
    for run in range(2 if config.restart else 1):
        lines = generate(config.seed * 10 + run, config.lines, lid_base=run * 100_000)
        path = tmp_path / f"in{run}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        inputs.append((path, lines))
        proc = run_ingest("--source", "file", "--source-opt", f"path={path}", "--sink", "file",
                          "--sink-opt", f"path={out}", "--error-sink", "file",
                          "--error-sink-opt", f"path={err}", *config.args())
        problems += [f"run {run}: {p}" for p in run_problems(proc.stderr, proc.returncode, lines)]
    checker = Checker(time_fields=frozenset({"ts"} if config.partition else ()),
                      lower=config.compat == "s3tables", fastparquet=config.fastparquet)
    found = check_run(inputs, out, err, checker)
    problems += checker.problems
    assert not problems, f"{len(problems)} problems ({found}):\n" + "\n".join(problems[:30])
    assert found["rows"] > 0 and found["errors"] > 0  # both places were exercised


def test_the_checker_finds_a_lost_row_an_altered_value_and_a_duplicate(
        tmp_path: Path, run_ingest: Any) -> None:
    """The check can fail: a good run, then its output tampered with three ways."""
    lines = [json.dumps({"lid": i, "n": i, "s": f"v{i}", "o": {"k": i}}) for i in range(1, 41)]
    lines[4] = "not json"
    path, out, err = tmp_path / "in.jsonl", tmp_path / "out", tmp_path / "err"
    path.write_text("\n".join(lines) + "\n")
    proc = run_ingest("--source", "file", "--source-opt", f"path={path}", "--sink", "file",
                      "--sink-opt", f"path={out}", "--error-sink", "file", "--error-sink-opt",
                      f"path={err}", "--batch-max-bytes", "1KiB", "--workers", "1")

    def problems() -> list[str]:
        checker = Checker()
        check_run([(path, lines)], out, err, checker)
        return run_problems(proc.stderr, proc.returncode, lines) + checker.problems

    assert problems() == []
    [file, *_] = sorted(out.rglob("*.parquet"))
    table = pq.read_table(file)
    first = table.column("lid")[0].as_py()
    pq.write_table(table.slice(1), file)  # a row lost
    assert problems() == [f"{path}:{first}: in 0 error records and 0 rows: {lines[first - 1]} []"]
    rows = table.to_pylist()
    rows[0]["o"]["k"] += 1  # a nested value altered
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), file)
    assert problems() == [f"line {first} o.k: input {first} stored as {first + 1} in a int64 "
                          "column"]
    pq.write_table(table, file)
    [record] = [line for e in sorted(err.rglob("*.jsonl")) for line in e.read_text().splitlines()]
    (err / "again.jsonl").write_text(record + "\n")  # a line in two places
    [found] = problems()
    assert found.startswith(f"{path}:5: in 2 error records and 0 rows: not json [")


def test_a_whole_float_beyond_38_digits_ends_in_one_place(
        tmp_path: Path, run_ingest: Any) -> None:
    """Found by seed 7 (w1 configs): ``1e+300`` is integral and beyond 2**53, so it is read
    again as an integer for a decimal(38, 0) column; it has 301 digits, and the batch's write
    raised InvalidOperation ten times, then every line of the batch was saved as unwritten
    (exit 1). Fixed in a62b667: rejected with a reason."""
    lines = ['{"lid": 1, "x": 1e+300}', '{"lid": 2, "x": 2}']
    path, out, err = tmp_path / "in.jsonl", tmp_path / "out", tmp_path / "err"
    path.write_text("\n".join(lines) + "\n")
    proc = run_ingest("--source", "file", "--source-opt", f"path={path}", "--sink", "file",
                      "--sink-opt", f"path={out}", "--error-sink", "file", "--error-sink-opt",
                      f"path={err}", "--workers", "1")
    checker = Checker()
    check_run([(path, lines)], out, err, checker)
    assert run_problems(proc.stderr, proc.returncode, lines) + checker.problems == []
