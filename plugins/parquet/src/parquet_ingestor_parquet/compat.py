"""Reader profiles (the ``compat`` option): the few places where query engines differ.

Every profile writes what all of them read: standard 3-level LISTs and nested groups
(pyarrow's compliant nested types), no unsigned integers (uint8-32 -> int64,
uint64 -> decimal(38, 0)), timestamps UTC-adjusted. What changes per profile:

=========  ==============  ==================
profile    timestamp unit  column names
=========  ==============  ==================
all        us              as they come
spark      us              as they come
trino      us              as they come
athena     ms              as they come
duckdb     us              as they come
s3tables   us              lower case
=========  ==============  ==================

``all`` (the default) is read by Spark, Trino/Athena, DuckDB, Polars and pyarrow alike; no
profile writes nanoseconds (Spark and Athena cannot read them). ``timestamp_unit`` overrides
the profile's unit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    timestamp_unit: str = "us"
    lowercase: bool = False


PROFILES: dict[str, Profile] = {
    "all": Profile(),
    "spark": Profile(),
    "trino": Profile(),
    "athena": Profile(timestamp_unit="ms"),
    "duckdb": Profile(),
    "s3tables": Profile(lowercase=True),
}
