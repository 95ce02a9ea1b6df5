"""Where a shard's databases are replicated (`--replica`): a directory or an S3-compatible bucket.

Every shard of a cluster is given the same target. Litestream appends a database's path
relative to the shard's directory (DATA/ab/cd/<id>.sqlite, decided by the id alone), so a
database's replica is keyed by its id, not by the shard holding it: a database that
rebalancing moves keeps one history.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from loot.ids import is_database_id


@dataclass(frozen=True)
class ReplicaTarget:
    """`url` is s3://bucket/prefix, or an absolute directory path; `endpoint` names an
    S3-compatible store's address (AWS's own when empty)."""

    url: str
    endpoint: str = ""

    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")

    def database_url(self, database_id: str) -> str:
        """The replica of one database, as `litestream restore` takes it."""
        if not is_database_id(database_id):
            raise ValueError(f"not a database id: {database_id!r}")
        return self.url_of(f"{database_id[:2]}/{database_id[2:4]}/{database_id}.sqlite")

    def catalog_url(self, shard: str) -> str:
        """The replica of a shard's catalog: which databases it held, and whose."""
        return self.url_of(catalog_path(shard))

    def url_of(self, relative: str) -> str:
        if not self.is_s3:
            return f"file://{Path(self.url) / relative}"
        url = f"{self.url.rstrip('/')}/{relative}"
        return f"{url}?{urlencode(self._s3_query())}" if self._s3_query() else url

    def replica_config(self, under: str = "") -> dict:
        """The `replica` section of Litestream's configuration: for the whole directory, or `under` a path."""
        if not self.is_s3:
            return {"type": "file", "path": str(Path(self.url) / under) if under else self.url}
        config: dict = {"url": f"{self.url.rstrip('/')}/{under}" if under else self.url}
        if self.endpoint:
            config.update(endpoint=self.endpoint, **{"force-path-style": True})
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            config["region"] = region
        return config

    def _s3_query(self) -> dict[str, str]:
        query = {"endpoint": self.endpoint} if self.endpoint else {}
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        return {**query, "region": region} if region else query


def catalog_path(shard: str) -> str:
    # Beside the two-hex-digit directories of the databases, never one of them.
    return f"catalogs/{shard}"


def parse_target(value: str, endpoint: str = "") -> ReplicaTarget:
    """`--replica`'s value: s3://bucket[/prefix], or a directory (made absolute: Litestream runs elsewhere)."""
    value = value.strip()
    if not value:
        raise ValueError("--replica is empty")
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"--replica {value!r}: give a directory or s3://bucket/prefix")
        return ReplicaTarget(f"s3://{parts.netloc}{parts.path.rstrip('/')}", endpoint)
    if endpoint:
        raise ValueError("--replica-endpoint applies to an s3:// replica only")
    return ReplicaTarget(str(Path(value).expanduser().resolve()))
