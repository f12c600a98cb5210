"""A newcomer's first hour, read from the real ``ingest`` output.

With the core alone (a site folder holding only parquet-ingestor, click and pluggy, run with
``python -S`` so the workspace's plugins are invisible): a missing bundled component is a hint
naming its distribution and extra, ``ingest plugins`` lists what is missing, ``ingest demo`` says
what it needs, and a run without Parquet says once that it writes JSON lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib.metadata import distribution
from pathlib import Path

import pytest
from parquet_ingestor.plugins import BUNDLED, build_registry

ROOT = Path(__file__).resolve().parents[1]
CLI = "from parquet_ingestor.cli import main; main()"


def _site_with_core_only(folder: Path) -> Path:
    """A folder holding parquet_ingestor, click and pluggy (code and metadata), nothing else."""
    import click
    import parquet_ingestor
    import pluggy

    folder.mkdir()
    for module, dist in ((parquet_ingestor, "parquet-ingestor"), (click, "click"),
                         (pluggy, "pluggy")):
        package = Path(module.__file__ or "").parent
        (folder / package.name).symlink_to(package)
        meta = distribution(dist)
        metadata = next(f for f in meta.files or () if f.name == "METADATA")
        info = Path(str(meta.locate_file(metadata))).parent  # the .dist-info folder
        (folder / info.name).symlink_to(info)
    return folder


@pytest.fixture(scope="module")
def core_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _site_with_core_only(tmp_path_factory.mktemp("core-only") / "site")


def ingest_core_only(site: Path, cwd: Path, *args: str,
                     extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_", "PYTHON"))}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (site, extra_path) if p)
    return subprocess.run([sys.executable, "-S", "-c", CLI, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_core_only_site_really_has_no_plugin(core_only: Path, tmp_path: Path) -> None:
    proc = ingest_core_only(core_only, tmp_path, "plugins")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("builtins  (parquet-ingestor")
    for bundled in BUNDLED:
        assert f"({bundled.distribution} " not in proc.stdout  # no "NAME  (DIST VERSION)" header


FLAGS = {"source": "--source", "sink": "--sink", "encoder": "--encoder"}


@pytest.mark.parametrize(("kind", "name", "bundled"), [
    (kind, name, bundled) for bundled in BUNDLED for kind, name in bundled.components])
def test_a_missing_bundled_component_says_what_to_install(
    core_only: Path, tmp_path: Path, kind: str, name: str, bundled: object,
) -> None:
    chosen = {"source": "file", "sink": "file", kind: name}
    args = ["--source", chosen["source"], "--source-opt", "path=in.jsonl",
            "--sink", chosen["sink"], "--sink-opt", "path=out"]
    if kind == "encoder":
        args += ["--encoder", name]
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n')
    proc = ingest_core_only(core_only, tmp_path, *args)
    assert proc.returncode == 2
    available = {"source": "file, replay", "sink": "file", "encoder": "jsonl"}[kind]
    dist, extra = bundled.distribution, bundled.extra  # type: ignore[attr-defined]
    assert proc.stderr == (
        f"ingest: error: unknown {kind} '{name}' (available: {available}): it comes with "
        f"{dist} (pip install 'parquet-ingestor[{extra}]')\n")


def test_ingest_plugins_lists_the_missing_bundled_plugins(core_only: Path, tmp_path: Path) -> None:
    proc = ingest_core_only(core_only, tmp_path, "plugins")
    assert proc.returncode == 0, proc.stderr
    tail = proc.stdout.split("Bundled with parquet-ingestor but not available here:\n", 1)[1]
    assert tail.splitlines() == [
        "  parquet  (encoder parquet): it comes with parquet-ingestor-parquet "
        "(pip install 'parquet-ingestor[parquet]')",
        "  s3  (sink s3): it comes with parquet-ingestor-s3 (pip install 'parquet-ingestor[s3]')",
        "  sqs  (source sqs): it comes with parquet-ingestor-sqs "
        "(pip install 'parquet-ingestor[sqs]')",
        "  iceberg  (sink iceberg): it comes with parquet-ingestor-iceberg "
        "(pip install 'parquet-ingestor[iceberg]')",
    ]


def test_ingest_plugins_with_everything_installed_lists_nothing_missing(run_ingest) -> None:  # type: ignore[no-untyped-def]
    proc = run_ingest("plugins")
    assert proc.returncode == 0, proc.stderr
    assert "not available here" not in proc.stdout


def test_a_disabled_bundled_plugin_says_it_is_disabled(run_ingest) -> None:  # type: ignore[no-untyped-def]
    proc = run_ingest("--source", "sqs", "--sink", "file", "--sink-opt", "path=out",
                      env={"INGEST_DISABLE_PLUGINS": "sqs"})
    assert proc.returncode == 2
    assert proc.stderr.endswith(
        "unknown source 'sqs' (available: file, redis-streams, replay): "
        "the sqs plugin is disabled by INGEST_DISABLE_PLUGINS\n")


def test_a_bundled_plugin_that_fails_to_load_says_so(
    core_only: Path, tmp_path: Path, make_plugin,  # type: ignore[no-untyped-def]
) -> None:
    broken = make_plugin(dist="parquet-ingestor-sqs", version="9.9", entry="sqs",
                         module="broken_sqs", code="raise ImportError('no module named boto3')")
    proc = ingest_core_only(core_only, tmp_path, "--source", "sqs", "--sink", "file",
                            "--sink-opt", "path=out", extra_path=broken)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == (
        "ingest: error: unknown source 'sqs' (available: file, replay): the sqs plugin of "
        "parquet-ingestor-sqs 9.9 failed to load: ImportError: no module named boto3")


def test_ingest_demo_with_the_core_alone_says_what_it_needs(core_only: Path, tmp_path: Path) -> None:
    proc = ingest_core_only(core_only, tmp_path, "demo")
    assert proc.returncode == 2
    assert proc.stderr == (
        "ingest: error: the demo needs the sqs, s3 and parquet plugins and moto's server; "
        "missing here: the sqs source, the parquet encoder, the s3 sink, moto's server "
        "(pip install 'parquet-ingestor[demo]')\n")
    help_proc = ingest_core_only(core_only, tmp_path, "--help")
    assert "  demo " in help_proc.stdout


def test_a_run_without_parquet_warns_once_that_it_writes_jsonl(
    core_only: Path, tmp_path: Path,
) -> None:
    (tmp_path / "in.jsonl").write_text("".join(f'{{"n": {i}}}\n' for i in range(50)))
    proc = ingest_core_only(core_only, tmp_path, "--source", "file", "--source-opt",
                            "path=in.jsonl", "--sink", "file", "--sink-opt", "path=out",
                            "--batch-max-records", "10")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, proc.stderr
    assert warnings[0].endswith(
        "WARNING no Parquet encoder here: writing JSON lines (.jsonl) files; for Parquet: it "
        "comes with parquet-ingestor-parquet (pip install 'parquet-ingestor[parquet]')")
    written = sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert len(written) == 5 and all(name.endswith(".jsonl") for name in written)


def test_no_warning_when_jsonl_is_chosen(core_only: Path, tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"n": 1}\n')
    proc = ingest_core_only(core_only, tmp_path, "--source", "file", "--source-opt",
                            "path=in.jsonl", "--sink", "file", "--sink-opt", "path=out",
                            "--encoder", "jsonl")
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr


def test_the_bundled_table_matches_the_plugins_and_the_core_extras() -> None:
    """BUNDLED is the one declaration; the plugins' registrations and the extras agree with it."""
    registry = build_registry()
    extras = tomllib.loads((ROOT / "core" / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for bundled in BUNDLED:
        assert registry.plugins[bundled.plugin].distribution == bundled.distribution
        registered = {(c.kind, c.name) for c in registry.plugins[bundled.plugin].components}
        assert registered == set(bundled.components)
        assert extras[bundled.extra] == [bundled.distribution]
        assert bundled.distribution in extras["all"]
        if bundled.plugin != "iceberg":  # the demo is SQS -> Parquet -> S3
            assert bundled.distribution in extras["demo"]
    # and every plugin shipped in plugins/ is declared there (a new one needs its line)
    shipped = {tomllib.loads(path.read_text())["project"]["name"]
               for path in ROOT.glob("plugins/*/pyproject.toml")}
    assert shipped == {b.distribution for b in BUNDLED}


# ---------------------------------------------------------------- the smaller things


def test_bare_ingest_prints_the_help(run_ingest) -> None:  # type: ignore[no-untyped-def]
    proc = run_ingest()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: ingest [OPTIONS] [COMMAND] [ARGS]...")
    assert "--source NAME" in proc.stdout and proc.stderr == ""


def test_non_json_without_error_sink_warns_once_and_suggests_an_error_sink(
    run_ingest, tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    (tmp_path / "in.jsonl").write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    proc = run_ingest("--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
                      "--sink-opt", "path=out", "--encoder", "jsonl", "--max-deliveries", "3")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    warned = [line for line in lines if "WARNING rejected message" in line]
    assert len(warned) == 1 and warned[0].endswith("in.jsonl:2: body is not a JSON object")
    stopped = [line for line in lines if " stopped (" in line]
    assert len(stopped) == 1
    # 3 lines read; the bad one delivered 3 times (--max-deliveries): 2 redeliveries, not messages
    assert " 3 messages (+2 redeliveries), 1 files, 2 rows, " in stopped[0]
    assert lines[-1].endswith(
        "ERROR   1 messages could not be written nor routed to an error sink; to keep rejected "
        "messages with their reason, add an error sink, e.g. --error-sink file "
        "--error-sink-opt path=errors")


def test_the_suggested_error_sink_works(run_ingest, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "in.jsonl").write_text('{"a": 1}\nnot json\n')
    proc = run_ingest("--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
                      "--sink-opt", "path=out", "--encoder", "jsonl",
                      "--error-sink", "file", "--error-sink-opt", "path=errors")
    assert proc.returncode == 0, proc.stderr
    assert " 2 messages, " in proc.stderr and "redeliver" not in proc.stderr
    assert [p.suffix for p in (tmp_path / "errors").rglob("*") if p.is_file()] == [".jsonl"]


@pytest.mark.aws
def test_validate_names_the_error_sink_when_its_bucket_is_missing(
    run_ingest, tmp_path: Path, aws_env: dict[str, str], unique_name: str,  # type: ignore[no-untyped-def]
) -> None:
    import boto3

    boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"],
                 region_name="us-east-1").create_bucket(Bucket=unique_name)
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n')
    env = {k: v for k, v in aws_env.items() if k.startswith("AWS_")}
    base = ["--validate", "--source", "file", "--source-opt", "path=in.jsonl",
            "--sink", "s3", "--sink-opt", f"bucket={unique_name}", "--error-sink", "s3"]
    proc = run_ingest(*base, "--error-sink-opt", "bucket=no-such-error-bucket", env=env)
    assert proc.returncode == 2
    assert proc.stderr == ("ingest: error: --error-sink: sink 's3' option 'bucket': bucket "
                           "'no-such-error-bucket' does not exist\n")
    typo = run_ingest(*base, "--error-sink-opt", f"bucket={unique_name}",
                      "--error-sink-opt", "prefx=errors/", env=env)
    assert typo.returncode == 2 and typo.stderr.startswith(
        "ingest: error: --error-sink: sink 's3' has no option 'prefx'")
    ok = run_ingest(*base, "--error-sink-opt", f"bucket={unique_name}", env=env)
    assert ok.returncode == 0, ok.stderr


def test_log_lines_show_paths_that_paste_into_a_shell_and_duckdb(
    run_ingest, tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    duckdb = pytest.importorskip("duckdb")
    (tmp_path / "in.jsonl").write_text(
        '{"id": 1, "t": "2024-05-01T10:00:00Z"}\n{"id": 2, "t": "2024-05-01T11:00:00Z"}\n')
    proc = run_ingest("--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
                      "--sink-opt", f"path={tmp_path / 'my out'}", "--partition-by", "event:t",
                      "--key-template", "year=%Y/hour=%H/{uuid}.{ext}")
    assert proc.returncode == 0, proc.stderr
    wrote = [line.split(" wrote ", 1)[1] for line in proc.stderr.splitlines() if " wrote " in line]
    assert len(wrote) == 2 and "%3D" not in proc.stderr and "file://" not in proc.stderr
    for shown in wrote:
        assert shown.startswith(f"'{tmp_path}/my out/year=2024/hour=1")  # quoted: a space
        listed = subprocess.run(f"ls {shown}", shell=True, capture_output=True, text=True)
        assert listed.returncode == 0, listed.stderr  # pastes into a shell as it is
        assert duckdb.sql(f"select count(*) from {shown}").fetchall() == [(1,)]  # and DuckDB


def test_key_template_help_lists_every_placeholder(run_ingest) -> None:  # type: ignore[no-untyped-def]
    from parquet_ingestor import keys

    proc = run_ingest("--help")
    text = " ".join(proc.stdout.split())
    help_line = text.split("--key-template TEXT ", 1)[1].split(" --partition-by", 1)[0]
    for name in sorted(keys._SIMPLE):
        assert f"{{{name}}}" in help_line, name
    assert "{field:NAME}" in help_line


def test_a_bare_duration_is_seconds_and_says_so(run_ingest, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from parquet_ingestor.units import DURATION_FORMS, SIZE_FORMS, parse_duration

    assert parse_duration("5") == parse_duration(5) == 5.0 == parse_duration("5s")
    helped = " ".join(run_ingest("--help").stdout.split())
    assert f"DURATION: {DURATION_FORMS}." in helped and f"SIZE: {SIZE_FORMS}." in helped
    assert "a bare number of seconds" in DURATION_FORMS
    bad = run_ingest("--source", "file", "--source-opt", "path=x", "--sink", "file",
                     "--sink-opt", "path=out", "--batch-max-age", "5 minutes")
    assert bad.returncode == 2
    assert bad.stderr == (f"ingest: error: --batch-max-age: not a duration: '5 minutes' "
                          f"(use {DURATION_FORMS})\n")
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "a bare number is seconds" in readme


def test_relative_paths_in_a_config_file_resolve_from_its_folder(
    run_ingest, tmp_path: Path, read_jsonl,  # type: ignore[no-untyped-def]
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "in.jsonl").write_text('{"n": 1}\n{"n": 2}\n')
    (conf / "ingest.toml").write_text(
        '[source]\nname = "file"\npath = "in.jsonl"\n\n'
        '[sink]\nname = "file"\npath = "out"\n\n[encoder]\nname = "jsonl"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run([sys.executable, "-c", CLI, "--config", str(conf / "ingest.toml")],
                          cwd=elsewhere, capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith("INGEST_")})
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["n"] for r in read_jsonl(conf / "out")) == [1, 2]
    assert not list(elsewhere.iterdir())
    # the command line's relative paths stay relative to the working directory
    (elsewhere / "other.jsonl").write_text('{"n": 3}\n')
    proc = subprocess.run([sys.executable, "-c", CLI, "--config", str(conf / "ingest.toml"),
                           "--source-opt", "path=other.jsonl"], cwd=elsewhere,
                          capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith("INGEST_")})
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["n"] for r in read_jsonl(conf / "out")) == [1, 2, 3]
