"""The ``ingest`` command.

``ingest --source NAME --sink NAME [options]`` runs a pipeline; ``ingest plugins`` lists what is
installed. Bad input exits 2 with one line naming the problem; a fatal runtime error exits 1.
Nothing heavy (pyarrow, boto3) is imported until a component is built.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import click

from .config import (
    PIPELINE_OPTIONS,
    ComponentChoice,
    RunConfig,
    build_pipeline,
    load_toml,
    merge,
)
from .demo import demo_command
from .errors import ConfigError, IngestError
from .options import split_pairs
from .plugins import KINDS, REGISTERED, Registry, call_each, get_registry
from .shutdown import Shutdown, SignalPolicy, hold_during_start_up
from .status import StatusLine, is_tty, summary_table
from .units import DURATION_FORMS, SIZE_FORMS

log = logging.getLogger("parquet_ingestor")
_COMPONENT_FLAGS = ("source", "transformer", "encoder", "sink", "error_sink")


def _pipeline_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add one click option per entry of PIPELINE_OPTIONS (the single declaration)."""
    for opt in reversed(PIPELINE_OPTIONS):
        flag = "--" + opt.name.replace("_", "-")
        default = f" [default: {opt.default}]" if opt.default not in (None, "", 0, False) else ""
        if opt.type == "bool":
            func = click.option(f"{flag}/--no-{flag[2:]}", opt.name, default=None,
                                help=opt.help + default)(func)
        elif opt.type == "list":  # repeatable; INGEST_* splits on whitespace
            func = click.option(flag, opt.name, multiple=True, metavar="TEXT",
                                help=opt.help + default)(func)
        else:
            metavar = {"size": "SIZE", "duration": "DURATION", "int": "N", "float": "NUMBER"}.get(
                opt.type, "TEXT")
            if opt.choices:  # a number option's choices are words it takes besides numbers
                words = "|".join(opt.choices)
                metavar = f"{metavar}|{words}" if opt.type in ("int", "float") else f"[{words}]"
            func = click.option(flag, opt.name, default=None, metavar=metavar,
                                help=opt.help + default)(func)
    return func


def _component_options(func: Callable[..., Any],
                       flags: Sequence[str] = _COMPONENT_FLAGS) -> Callable[..., Any]:
    helps = {
        "source": "where messages come from (see `ingest plugins`)",
        "transformer": "turns messages into records [default: json]",
        "encoder": "file format [default: parquet when installed, else jsonl]",
        "sink": "where files go",
        "error_sink": "where rejected messages go (default: back to the source)",
    }
    for name in reversed(flags):
        flag = name.replace("_", "-")
        func = click.option(f"--{flag}-opt", f"{name}_opt", multiple=True, metavar="K=V",
                            help=f"option for the {flag} (repeatable)")(func)
        func = click.option(f"--{flag}", name, default=None, metavar="NAME",
                            help=helps[name])(func)
    return func


@click.group(
    invoke_without_command=True,
    context_settings={"auto_envvar_prefix": "INGEST", "help_option_names": ["-h", "--help"],
                      "max_content_width": 100},
    epilog=f"SIZE: {SIZE_FORMS}. DURATION: {DURATION_FORMS}.",
)
@_component_options
@_pipeline_options
@click.option("--config", "config_file", metavar="FILE.toml",
              help="TOML config file (command line and INGEST_* variables win)")
@click.option("--validate", is_flag=True,
              help="check the configuration and that the source and sinks are reachable "
                   "(queue, bucket), then exit without receiving anything")
@click.version_option(package_name="parquet-ingestor", prog_name="ingest")
@click.pass_context
def cli(ctx: click.Context, /, config_file: str | None, validate: bool, **params: Any) -> None:
    """Turn streaming messages into time-partitioned Parquet files.

    \b
    Examples:
      ingest --source file --source-opt path=events.jsonl --sink file --sink-opt path=out
      ingest --source sqs --source-opt queue_url=$QUEUE --sink s3 --sink-opt bucket=lake
      ingest plugins
    """
    if ctx.invoked_subcommand is not None:
        return
    if not config_file and not validate and not any(
            value not in (None, ()) for value in params.values()):
        click.echo(ctx.get_help())  # a bare `ingest`: what to type, not "no source given"
        ctx.exit(0)
    early = _hold_signals()
    pipeline, values = _build(config_file, params)
    if validate:
        pipeline.validate()
        from .metric_adapters import build_adapters

        for adapter in build_adapters(values, get_registry()):  # the OTLP receiver answers...
            adapter.close()
        names = ", ".join(f"{kind.replace('_', ' ')} {name}" for kind, name in pipeline.names.items())
        click.echo(f"ingest: configuration OK ({names})")
        ctx.exit(0)
    ctx.exit(_run(pipeline, values, early))


def _build(config_file: str | None, params: dict[str, Any],
           source: ComponentChoice | None = None) -> tuple[Any, dict[str, Any]]:
    """The pipeline and the run's values from a TOML file, INGEST_* variables and flags
    (``source`` replaces the configured one: ``ingest replay``)."""
    registry = get_registry()
    config = RunConfig()
    if config_file:
        config = load_toml(config_file, registry)
    config = merge(config, _config_from_params(params))
    if source is not None:
        config.source = source
    values = config.values()
    from .logs import setup_logging

    setup_logging(values["log_level"], values["log_format"])
    from .config import secret_values
    from .logs import mask_secrets

    mask_secrets(secret_values(config, registry))  # secret option values never reach a log
    return build_pipeline(config, registry), values


def _config_from_params(params: dict[str, Any]) -> RunConfig:
    config = RunConfig()
    for name in _COMPONENT_FLAGS:
        flag = "--" + name.replace("_", "-") + "-opt"
        opts = split_pairs(params.get(f"{name}_opt") or (), flag)
        if params.get(name):
            setattr(config, name, ComponentChoice(params[name], opts))
        elif opts:
            setattr(config, name, ComponentChoice("", opts))  # options for the configured one
    config.pipeline = {opt.name: params[opt.name] for opt in PIPELINE_OPTIONS
                       if params.get(opt.name) not in (None, ())}
    # a bare --x-opt with the component named in the config file: keep the config's name
    return config


def _hold_signals() -> SignalPolicy:
    """Until the pipeline runs, a stop request (SIGTERM, SIGHUP, SIGINT) is noted: the run then
    stops before receiving, instead of dying mid-start or printing a KeyboardInterrupt
    traceback. A second SIGINT exits at once with 130 (see :mod:`.shutdown`)."""

    def abort() -> None:
        click.echo("ingest: second signal during start-up: exiting", err=True)
        raise SystemExit(130)

    return hold_during_start_up(abort)


def _run(pipeline: Any, values: dict[str, Any], early: SignalPolicy | None = None) -> int:
    """Run with signal handling (:mod:`.shutdown`): SIGTERM/SIGHUP/SIGINT drain, a second
    SIGINT or ``--shutdown-timeout`` aborts. ``early`` holds what came during start-up."""
    from .memory import limit_malloc_arenas
    from .metric_adapters import start_adapters

    limit_malloc_arenas()  # the command owns its process; the library does not do this
    adapters = start_adapters(pipeline, values, get_registry())  # before anything is received
    shutdown = Shutdown(pipeline, values.get("shutdown_timeout"), early)
    exporter = None
    status = StatusLine(pipeline).start() if is_tty() else None
    try:
        with shutdown:
            if values.get("metrics_port") is not None:
                from .exporter import start_exporter

                exporter = start_exporter(pipeline, values["metrics_port"],
                                          values["metrics_host"])
            metrics = pipeline.run()
    finally:
        if exporter is not None:
            exporter.shutdown()
        adapters.close()
        if status is not None:
            status.stop()
    if status is not None:
        sys.stderr.write(summary_table(metrics, pipeline.stopped_reason))
    snap = metrics.snapshot()
    redelivered = snap.get("redelivered", 0)
    log.info(
        "stopped (%s): %d messages%s, %d files, %d rows, %d bytes, %d rejected, %d nacked",
        pipeline.stopped_reason, snap["received"] - redelivered,
        f" (+{redelivered:.0f} redeliveries)" if redelivered else "", snap["files_written"],
        snap["rows_written"], snap["bytes_written"], snap["rejected"], snap["nacked"],
        extra={"event": "stopped", **{k: v for k, v in snap.items() if isinstance(v, int | float)}},
    )
    if pipeline.aborted:
        return 130
    if getattr(pipeline.source, "unread", None):
        return 1  # files not read to their end: the source logged which, and why
    failed = getattr(pipeline.source, "failed", None)
    if failed:
        hint = ("" if getattr(pipeline, "error_sink", None) is not None else
                "; to keep rejected messages with their reason, add an error sink, "
                "e.g. --error-sink file --error-sink-opt path=errors")
        log.error("%d messages could not be written nor routed to an error sink%s",
                  len(failed), hint)
        return 1
    if pipeline.poisoned:
        log.error("%d message(s) rejected on %d deliveries or more went back to the source "
                  "unwritten (no --error-sink); they are still there", pipeline.poisoned,
                  pipeline.settings.max_deliveries)
        return 1
    pending = getattr(pipeline.source, "pending_redelivery", 0)
    if pipeline.stopped_reason == "idle" and pending:
        log.error("%d messages given back to the source unwritten were not seen again before "
                  "the run went idle: they are still in the queue, waiting for their retry "
                  "delay; exit 1", pending)
        return 1
    return 0


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--check", is_flag=True,
              help="exit 1 when any plugin failed to load or has an option named like a "
                   "pipeline option")
def plugins_command(as_json: bool, check: bool) -> None:
    """List installed plugins, their components and options, and load errors."""
    from .plugins import option_collisions

    registry = get_registry()
    if as_json:
        click.echo(json.dumps(describe_plugins(registry), indent=2))
    else:
        _print_plugins(registry)
    if check:
        collisions = option_collisions(registry, (o.name for o in PIPELINE_OPTIONS))
        for line in collisions:
            click.echo(f"ingest: check: {line}", err=True)
        if registry.errors() or collisions:
            sys.exit(1)


def describe_plugins(registry: Registry) -> list[dict[str, Any]]:
    """Plugins as data (``ingest plugins --json``); secret option defaults are never shown."""
    out = []
    for info in registry.plugins.values():
        out.append({
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "module": info.module,
            "error": info.error,
            "components": [
                {"kind": c.kind, "name": c.name, "help": c.help, "options": [
                    {"name": o.name, "type": o.type, "required": o.required,
                     "default": None if o.secret else o.default, "help": o.help,
                     "secret": o.secret,
                     "choices": list(o.choices) if o.choices else None}
                    for o in c.options]}
                for c in info.components
            ],
        })
    return out


def _print_plugins(registry: Registry) -> None:
    for info in registry.plugins.values():
        version = f" {info.version}" if info.version else ""
        click.echo(f"{info.name}  ({info.distribution}{version})")
        if info.error:
            click.echo(f"  ! failed to load: {info.error}")
        for kind in REGISTERED:
            for spec in info.components:
                if spec.kind != kind:
                    continue
                click.echo(f"  {kind.replace('_', ' ')} {spec.name}: {spec.help}")
                for opt in spec.options:
                    click.echo(f"      {opt.describe()}")
        click.echo()
    for line in registry.errors():
        if "registered by both" in line:
            click.echo(f"! {line}")
    missing = registry.missing_bundled()
    if missing:
        click.echo("Bundled with parquet-ingestor but not available here:")
        for bundled in missing:
            what = ", ".join(f"{kind} {name}" for kind, name in bundled.components)
            click.echo(f"  {bundled.plugin}  ({what}): {registry.missing_hint(bundled)}")


cli.add_command(demo_command)


@cli.command("replay", epilog=f"SIZE: {SIZE_FORMS}. DURATION: {DURATION_FORMS}.",
             context_settings={"auto_envvar_prefix": "INGEST",  # INGEST_SINK..., as a run
                               "help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@click.option("--dry-run", is_flag=True,
              help="print the records' counts by reason, write nothing")
@click.option("--force", is_flag=True, help="replay files that carry a .replayed marker too")
@partial(_component_options, flags=_COMPONENT_FLAGS[1:])
@_pipeline_options
@click.option("--config", "config_file", metavar="FILE.toml",
              help="TOML config file (its source is replaced by the URLs)")
def replay_command(urls: tuple[str, ...], dry_run: bool, force: bool, config_file: str | None,
                   **params: Any) -> None:
    """Run error-sink records (URL: a file, directory, prefix or glob, local or s3://, gs://
    ...) through the transformer, encoder and sink again; each takes its original message id,
    and the reason it was rejected is kept in the attribute rejected_reason. A file whose
    records were all written or rejected again gets a FILE.replayed marker; a second replay
    skips it (unless --force). Takes the same options as a run.
    """
    if dry_run:
        from .replay import count_reasons

        reasons, files, skipped = count_reasons(urls, force)
        marked = f", {skipped} skipped (already replayed)" if skipped else ""
        click.echo(f"{sum(reasons.values())} records in {files} file(s){marked}; by reason:")
        for reason, count in reasons.most_common():
            click.echo(f"{count:>8}  {reason}")
        return
    early = _hold_signals()
    pipeline, values = _build(config_file, params, ComponentChoice(
        "replay", {"path": list(urls), "force": force}))
    if pipeline.error_sink is not None:
        pipeline.source.destinations["error_sink"] = pipeline.error_sink.url("")
    sys.exit(_run(pipeline, values, early))


@cli.command("new-plugin")
@click.argument("name")
@click.option("--kind", type=click.Choice(KINDS), default="source", show_default=True,
              help="what the plugin provides")
@click.option("--dir", "directory", default=".", metavar="PATH", show_default=True,
              help="where to create parquet-ingestor-NAME/")
def new_plugin_command(name: str, kind: str, directory: str) -> None:
    """Create a plugin distribution from the template: one method left to write, tests pass."""
    from .scaffold import next_steps, render_plugin

    target = render_plugin(name, kind, directory)
    click.echo(next_steps(target, name, kind), nl=False)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: one-line errors (exit 2 for bad input, 1 for runtime failures)."""
    try:
        registry = get_registry()
        # each plugin's commands on their own: one that raises does not lose the others'
        for plugin, exc in call_each(registry.hook.ingest_register_commands,
                                 log_errors=False, cli=cli):
            click.echo(f"ingest: warning: plugin {plugin}: commands not loaded: {exc}",
                       err=True)
    except Exception as exc:  # noqa: BLE001 - a plugin's command hook must not brick the CLI
        click.echo(f"ingest: warning: plugin commands not loaded: {exc}", err=True)
    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="ingest",
                        standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("ingest: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"ingest: error: {_one_line(exc.format_message())}", err=True)
        sys.exit(2)
    except ConfigError as exc:
        click.echo(f"ingest: error: {_one_line(str(exc))}", err=True)
        sys.exit(2)
    except IngestError as exc:
        click.echo(f"ingest: fatal: {_one_line(str(exc))}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last resort: one line, details at DEBUG
        log.debug("fatal error", exc_info=True)
        click.echo(f"ingest: fatal: {type(exc).__name__}: {_one_line(str(exc))}", err=True)
        sys.exit(1)
    if isinstance(code, int):
        sys.exit(code)


def command() -> None:
    """The ``ingest`` console script: :func:`main`, in a process that ends with it. Everything
    written was committed (and acknowledged) before this returns, so the interpreter's exit
    skips a last collection of every object, which took ~50 ms of CPU (pyarrow's and numpy's
    objects: more than the rest of a one-line run's shutdown). Callers of :func:`main` in a
    process that goes on keep their collector as it was."""
    try:
        main()
    finally:
        import gc

        gc.freeze()  # objects alive now are never collected: the process is exiting


def _one_line(text: str) -> str:
    """Errors print on one line, with anything that looks like a credential masked."""
    from .logs import redact

    return redact(" ".join(text.split()))
