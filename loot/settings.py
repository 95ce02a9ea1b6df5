"""Flags with `LOOT_*` environment defaults: a flag wins over the environment."""

from __future__ import annotations

import argparse
import os
from typing import Any


def env_default(name: str, default: Any = None) -> Any:
    return os.environ.get(f"LOOT_{name}", default)


def add_flag(parser: argparse.ArgumentParser, flag: str, *, default: Any = None, help: str, **kwargs: Any) -> None:
    """`--some-flag`, defaulting to $LOOT_SOME_FLAG, then to `default`."""
    env = flag.lstrip("-").replace("-", "_").upper()
    shown = f" (env LOOT_{env}" + (f", default {default})" if default not in (None, "") else ")")
    parser.add_argument(flag, default=env_default(env, default), help=help + shown, **kwargs)

