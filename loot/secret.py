"""The cluster secret: routers present it to shards in every call's metadata."""

from __future__ import annotations

import os
import secrets

SECRET_HEADER = "loot-cluster-secret"
MIN_LENGTH = 16


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def cluster_secret() -> str:
    """The secret from $LOOT_CLUSTER_SECRET (never a flag: flags show up in `ps`)."""
    secret = os.environ.get("LOOT_CLUSTER_SECRET", "")
    if len(secret) < MIN_LENGTH:
        raise SystemExit(f"LOOT_CLUSTER_SECRET must be set to the cluster's shared secret ({MIN_LENGTH}+ characters)")
    return secret


def accepted_secrets() -> list[str]:
    """What a shard accepts: the secret, and during a rotation the other one
    ($LOOT_CLUSTER_SECRET_ROTATING), so nodes can restart one by one in any order."""
    rotating = os.environ.get("LOOT_CLUSTER_SECRET_ROTATING", "")
    if rotating and len(rotating) < MIN_LENGTH:
        raise SystemExit(f"LOOT_CLUSTER_SECRET_ROTATING, when set, must have {MIN_LENGTH}+ characters")
    return [cluster_secret(), *([rotating] if rotating else [])]
