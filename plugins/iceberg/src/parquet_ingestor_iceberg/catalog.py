"""Opening the catalog: the embedded SQLite one, or one configured the pyiceberg way.

Every failure becomes a one-line ConfigError (the CLI exits 2): an unknown catalog name, a
catalog that cannot be reached, a missing table when ``create=false``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from parquet_ingestor.errors import ConfigError

from .options import WHERE, IcebergSettings, endpoint_properties

PYARROW_IO = "pyiceberg.io.pyarrow.PyArrowFileIO"  # named, so pyiceberg does not log its guess


def open_catalog(settings: IcebergSettings) -> Any:
    """The pyiceberg Catalog these settings name (connecting to it, so errors surface now)."""
    from pyiceberg.catalog import load_catalog

    passthrough = dict(settings.catalog_properties)
    if settings.catalog:
        name = settings.catalog
        from pyiceberg.catalog import list_catalogs

        try:
            known = list_catalogs() or []
        except Exception:  # noqa: BLE001 - a broken .pyiceberg.yaml shows up when loading
            known = []
        if name not in known and "uri" not in passthrough and "type" not in passthrough:
            raise ConfigError(
                f"{WHERE} option 'catalog': unknown catalog '{name}' (none in .pyiceberg.yaml "
                f"nor PYICEBERG_CATALOG__{name.upper()}__* variables"
                + (f"; configured: {', '.join(sorted(known))})" if known else ")"))
        try:
            return load_catalog(name, **passthrough)
        except Exception as exc:  # noqa: BLE001 - any failure here is a setup problem
            raise ConfigError(f"{WHERE} option 'catalog': cannot open catalog '{name}': "
                              f"{one_line(exc)}") from None
    if not settings.remote:
        try:
            Path(settings.warehouse).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{WHERE} option 'warehouse': cannot create {settings.warehouse}: "
                              f"{exc.strerror}") from None
    properties = {
        "type": "sql",
        "uri": settings.catalog_uri,
        "warehouse": settings.warehouse,
        "py-io-impl": PYARROW_IO,
        **endpoint_properties(settings.warehouse),
        **passthrough,
    }
    try:
        return load_catalog(settings.catalog_name, **properties)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"{WHERE} option 'catalog_uri': cannot reach catalog "
                          f"{_safe_uri(settings.catalog_uri)}: {one_line(exc)}") from None


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first if len(first) <= 300 else first[:297] + "..."


def _safe_uri(uri: str) -> str:
    """A SQLAlchemy URI without its password, for messages."""
    scheme, sep, rest = uri.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at:
        return uri
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
