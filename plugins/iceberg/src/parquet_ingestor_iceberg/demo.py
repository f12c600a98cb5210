"""``ingest iceberg-demo``: JSON events -> Parquet -> an Iceberg table, locally, in one command.

Writes sample events to a JSON-lines file, runs file -> iceberg into a local warehouse with the
embedded SQLite catalog (partitioned by day of ``created_at`` and by ``country``), then prints
the table's snapshots, its partitions and a row count read back with pyiceberg. Nothing to set
up: no server, no account.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

TABLE = "demo.events"
SCHEMA = {"id": "string", "created_at": "timestamp[ms, UTC]", "user_id": "int64",
          "type": "string", "amount": "float64", "country": "string"}


def sample_events(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Events spread over the last two days, in a few countries."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    return [
        {"id": f"evt-{i:06d}",
         "created_at": (now - timedelta(seconds=rng.randrange(2 * 86400))).isoformat(
             timespec="milliseconds").replace("+00:00", "Z"),
         "user_id": rng.randrange(1, 1 << 36),
         "type": rng.choice(["page_view", "click", "add_to_cart", "purchase"]),
         "amount": round(rng.random() * 200, 2),
         "country": rng.choice(["US", "DE", "JP"])}
        for i in range(count)
    ]


@click.command("iceberg-demo")
@click.option("--events", default=20000, show_default=True, help="sample events to ingest")
@click.option("--folder", default="iceberg-demo", show_default=True,
              help="where the events file and the warehouse go")
def iceberg_demo_command(events: int, folder: str) -> None:
    """Run JSON -> Parquet -> Iceberg into a local table, then show its snapshots."""
    import logging

    from parquet_ingestor.cli import _run
    from parquet_ingestor.config import ComponentChoice, RunConfig, build_pipeline
    from parquet_ingestor.logs import setup_logging
    from parquet_ingestor.plugins import get_registry

    root = Path(folder).absolute()
    root.mkdir(parents=True, exist_ok=True)
    source = root / "events.jsonl"
    source.write_text("".join(json.dumps(e) + "\n" for e in sample_events(events)))
    schema = root / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    warehouse = root / "warehouse"
    click.echo(f"wrote {events:,} sample events to {source}")
    config = RunConfig(
        source=ComponentChoice("file", {"path": str(source)}),
        transformer=ComponentChoice("json", {"schema": str(schema)}),
        encoder=ComponentChoice("parquet"),
        sink=ComponentChoice("iceberg", {"table": TABLE, "warehouse": str(warehouse)}),
        pipeline={"partition_by": "event:created_at", "batch_max_records": max(1, events // 4),
                  "key_template": "%Y/%m/%d/{field:country}/{uuid}.{ext}"},
    )
    setup_logging("WARNING")
    logging.getLogger("parquet_ingestor_iceberg").setLevel(logging.INFO)
    pipeline = build_pipeline(config, get_registry())
    click.echo(f"running file -> Parquet -> Iceberg table {TABLE} in {warehouse} ...")
    code = _run(pipeline, {})
    _show(warehouse)
    if code:
        raise SystemExit(code)


def _show(warehouse: Path) -> None:
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("default", uri=f"sqlite:///{warehouse / 'catalog.db'}",
                         warehouse=str(warehouse))
    table = catalog.load_table(TABLE)
    click.echo(f"\nTable {TABLE} at {table.location()}")
    spec = ", ".join(f"{f.transform}({table.schema().find_column_name(f.source_id)})"
                     for f in table.spec().fields)
    click.echo(f"  partitioned by: {spec}")
    snapshots = table.snapshots()
    click.echo(f"\nSnapshots ({len(snapshots)}):")
    shown = snapshots if len(snapshots) <= 12 else [*snapshots[:5], None, *snapshots[-5:]]
    for s in shown:
        if s is None:
            click.echo(f"  ... {len(snapshots) - 10} more")
            continue
        summary = s.summary
        assert summary is not None
        click.echo(f"  {s.snapshot_id}  +{summary['added-data-files']} files "
                   f"+{summary['added-records']} rows  commit {summary['ingest.commit-id']}")
    rows = table.scan().to_arrow()
    click.echo(f"\nRow count (pyiceberg scan): {rows.num_rows:,}; "
               f"distinct ids: {len(set(rows.column('id').to_pylist())):,}")
    by_country: dict[str, int] = {}
    for country in rows.column("country").to_pylist():
        by_country[country] = by_country.get(country, 0) + 1
    click.echo("  by country: " + ", ".join(f"{k} {v:,}" for k, v in sorted(by_country.items())))
    click.echo(f"\nRead it yourself:\n  from pyiceberg.catalog.sql import SqlCatalog\n"
               f"  SqlCatalog('default', uri='sqlite:///{warehouse / 'catalog.db'}', "
               f"warehouse='{warehouse}').load_table('{TABLE}').scan().to_arrow()")
