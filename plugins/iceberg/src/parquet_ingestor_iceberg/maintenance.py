"""Orphan data files: written under the table's data location but in no snapshot.

A writer killed between writing its files and committing them leaves such files behind (no
reader ever sees them). ``remove_orphan_files`` deletes the ones older than a grace period,
so files a running writer has staged but not yet committed are left alone.
Engines have the same procedure (Spark ``CALL system.remove_orphan_files``).
"""

from __future__ import annotations

import time
from typing import Any


def orphan_files(table: Any, older_than: float = 86400.0) -> list[str]:
    """Data files under ``{location}/data`` in no snapshot, last modified ``older_than``
    seconds ago or more (pyarrow FileIO)."""
    from pyarrow.fs import FileSelector, FileType

    table = table.refresh()
    referenced = {_plain(p) for p in table.inspect.all_files()["file_path"].to_pylist()}
    root = f"{table.location().rstrip('/')}/data"
    scheme, netloc, path = table.io.parse_location(root)
    fs = table.io.fs_by_scheme(scheme, netloc)
    selector = FileSelector(path, recursive=True, allow_not_found=True)
    cutoff = time.time() - older_than
    found = []
    for info in fs.get_file_info(selector):
        if info.type != FileType.File or info.path.endswith("/"):
            continue
        location = f"{scheme}://{info.path}" if scheme != "file" else info.path
        mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
        if _plain(location) not in referenced and mtime <= cutoff:
            found.append(location)
    return sorted(found)


def remove_orphan_files(table: Any, older_than: float = 86400.0) -> list[str]:
    """Delete :func:`orphan_files`; returns what was deleted."""
    found = orphan_files(table, older_than)
    for location in found:
        table.io.delete(location)
    return found


def _plain(location: str) -> str:
    """``file:///x`` and ``/x`` are the same file; ``s3a://`` is ``s3://``."""
    if location.startswith("file://"):
        return location[len("file://"):]
    return location.replace("s3a://", "s3://", 1)
