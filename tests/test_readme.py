"""The README's commands work as written, in a fresh copy of the checkout with nothing beside it.

Every fenced block of the README is listed in CHECKS with what checks it, so a new block cannot
go unchecked. The copy holds the tracked files (and untracked, not ignored ones) in a new folder
with no ``shared`` next to it; uv installs it from scratch (its cache makes that a few seconds).
The install block runs in CI (``.ci/wheels``), which needs a network for plain pip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from readme_blocks import Block, block_under, blocks  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
UV = shutil.which("uv")

#: first line of each README block -> what runs it
CHECKS = {
    "uv run ingest demo": "test_first_command_in_a_fresh_copy (+ collection of the second)",
    "ingest --source sqs --source-opt queue_url=": "test_the_aws_examples_against_moto",
    "uv build --all-packages": ".ci/wheels (plain pip in a fresh venv)",
    "uv run python -m parquet_ingestor.sample": "test_without_a_cloud_in_a_fresh_copy",
    "[source]": "test_the_aws_examples_against_moto",
    "from parquet_ingestor import Pipeline": "test_without_a_cloud_in_a_fresh_copy",
    "pip install uv": ".ci/run (what CI runs)",
}


def readme_block(start: str) -> Block:
    found = [b for b in blocks(README) if b.first_line.startswith(start)]
    assert len(found) == 1, start
    return found[0]


def test_every_readme_block_is_checked() -> None:
    for block in blocks(README):
        matching = [key for key in CHECKS if block.first_line.startswith(key)]
        assert len(matching) == 1, f"README block under '{block.heading}' has no check in CHECKS"
    assert (ROOT / ".ci" / "wheels").is_file()
    assert 'readme_blocks.py" README.md Install' in (ROOT / ".ci" / "wheels").read_text()
    assert block_under(README, "Install").first_line.startswith("uv build --all-packages")


def test_nothing_reads_outside_the_checkout() -> None:
    """No tracked file points at the shared folder beside the checkout or at this machine."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    outside = re.compile("|".join(map(re.escape, ["../" + "shared", "/work" + "/", "BENCH_" + "SHARED"])))
    offenders = []
    for rel in listed.stdout.split("\0"):
        path = ROOT / rel
        if not rel or not path.is_file() or rel == "uv.lock":
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        offenders += [f"{rel}:{n}" for n, line in enumerate(text.splitlines(), 1)
                      if outside.search(line)]
    assert offenders == []


def test_docs_commands_name_scripts_that_exist() -> None:
    """``python path/to/script.py`` in any README or docs block names a file of the checkout."""
    pages = [README, *ROOT.glob("docs/*.md"), *ROOT.glob("plugins/*/README.md"),
             *ROOT.glob("examples/**/README.md")]
    script = re.compile(r"\bpython3? ((?:[\w.-]+/)*[\w.-]+\.py)\b")
    checked = 0
    for page in pages:
        for block in blocks(page):
            for path in script.findall(block.text):
                assert (ROOT / path).is_file() or (page.parent / path).is_file(), (page, path)
                checked += 1
    assert checked >= 5


# ---------------------------------------------------------------- a fresh copy


@pytest.fixture(scope="module")
def fresh_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if UV is None:
        pytest.skip("uv is not installed")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    copy = tmp_path_factory.mktemp("clone") / "parquet-ingestor"
    for rel in filter(None, listed.stdout.split("\0")):
        source = ROOT / rel
        if source.is_file():
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / rel)
    assert sorted(p.name for p in copy.parent.iterdir()) == ["parquet-ingestor"]  # no shared/
    return copy


def fresh_env() -> dict[str, str]:
    """This environment without the running venv, project overrides or AWS settings."""
    venv_bin = str(Path(sys.prefix) / "bin")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("INGEST_", "AWS_", "PYTHON", "VIRTUAL_ENV", "UV_PROJECT",
                                "BENCH_"))}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin]
    env["PATH"] = os.pathsep.join([str(Path(UV or "uv").parent), *path])
    return env


def bash(script: str, cwd: Path, timeout: float, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    """A block as a user pastes it, but stopping at the first failing command."""
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd,
                          env=env or fresh_env(), capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_first_command_in_a_fresh_copy(fresh_copy: Path) -> None:
    first = readme_block("uv run ingest demo").first_line
    proc = bash(first, fresh_copy, timeout=280)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert re.search(r"total: [\d,]+ rows, 5,000 distinct event ids", proc.stdout), proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_suite_collects_in_a_fresh_copy(fresh_copy: Path) -> None:
    second = readme_block("uv run ingest demo").text.splitlines()[1]
    assert second.startswith("uv run pytest ")
    proc = bash("uv run pytest --collect-only -q", fresh_copy, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"^\d+ tests collected", proc.stdout, re.M), proc.stdout[-2000:]
    assert "error" not in proc.stdout.lower().split("tests collected")[-1]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_without_a_cloud_in_a_fresh_copy(fresh_copy: Path) -> None:
    cloud = readme_block("uv run python -m parquet_ingestor.sample")
    assert cloud.heading == "Without a cloud"
    proc = bash(cloud.text, fresh_copy, timeout=280)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert re.search(r"│\s+100000\s+│", proc.stdout), proc.stdout  # DuckDB's count(*) box
    # then the library example, on the same events.jsonl into the same out/
    library = readme_block("from parquet_ingestor import Pipeline")
    (fresh_copy / "library_example.py").write_text(library.text)
    proc = bash("uv run python library_example.py && uv run python -c \"import duckdb; "
                "print(duckdb.sql(\\\"select count(*), count(distinct id) from "
                "'out/**/*.parquet'\\\").fetchall())\"", fresh_copy, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[(200000, 100000)]"


# ---------------------------------------------------------------- the AWS examples


@pytest.mark.aws
@pytest.mark.timeout(120)
def test_the_aws_examples_against_moto(tmp_path: Path, aws_env: dict[str, str]) -> None:
    """The command and the TOML file, as written, against moto: --validate finds the queue and
    the buckets they name (moto's account id is the README's 123456789012)."""
    import boto3

    endpoint = aws_env["AWS_ENDPOINT_URL"]
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="eu-west-1")
    queue_url = sqs.create_queue(QueueName="events")["QueueUrl"]
    assert queue_url.endswith("/123456789012/events")
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
        Bucket="my-lake")
    env = {**aws_env, "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                               aws_env.get("PATH", "")])}
    env = {k: v for k, v in env.items() if not k.startswith("INGEST_")}

    command = readme_block("ingest --source sqs --source-opt queue_url=").text
    proc = bash(command.rstrip() + " --validate", tmp_path, timeout=100, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ingest: configuration OK (source sqs, ")

    (tmp_path / "ingest.toml").write_text(readme_block("[source]").text)
    proc = bash("ingest --config ingest.toml --validate", tmp_path, timeout=100, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "error sink s3" in proc.stdout
