"""Server settings from three places, in order of precedence: flag > environment > file.

Every setting is a flag (`--forward-timeout`), an environment variable
(`LOOT_FORWARD_TIMEOUT`) and a key in the TOML file named by `--config` or
`LOOT_CONFIG` (`forward-timeout = 30`). Top-level keys apply to every role; a
`[router]` or `[shard]` table applies to that role only and wins over them.
An empty environment variable counts as unset. A setting the command cannot run
without is checked by the command after `resolve`, not with argparse's `required`.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES = ("router", "shard")
_ANY_ROLE: set[str] = set()  # every setting key some command defines


@dataclass(frozen=True)
class Setting:
    flag: str
    dest: str
    env: str
    default: Any
    convert: Callable[[Any], Any]

    @property
    def key(self) -> str:
        return self.flag.lstrip("-")


def boolean(value: Any) -> bool:
    """A switch's value from the environment (`true`/`false`, `1`/`0`, `yes`/`no`) or the file."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError("expected true or false")


def positive_number(value: Any) -> float:
    """A duration or size that must be more than zero (and finite)."""
    number = float(value)
    if not 0 < number < float("inf"):
        raise ValueError("expected a number greater than 0")
    return number


def add_flag(parser: argparse.ArgumentParser, flag: str, *, default: Any = None, help: str,
             type: Callable[[Any], Any] = str, **kwargs: Any) -> None:
    """`--some-flag`: from the command line, else $LOOT_SOME_FLAG, else the config file, else `default`.
    With `action="store_true"` it is a switch: present on the command line means true."""
    dest = flag.lstrip("-").replace("-", "_")
    switch = kwargs.get("action") == "store_true"
    setting = Setting(flag, dest, f"LOOT_{dest.upper()}", bool(default) if switch else default,
                      boolean if switch else type)
    shown = f" (env {setting.env}" + (f", default {default})" if default not in (None, "") else ")")
    typed = {} if switch else {"type": type}
    parser.add_argument(flag, default=argparse.SUPPRESS, help=help + shown, **typed, **kwargs)
    _ANY_ROLE.add(setting.key)
    settings = parser.get_default("_settings") or []
    parser.set_defaults(_settings=[*settings, setting])


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                        help="TOML file of settings; flags and LOOT_* variables win over it (env LOOT_CONFIG)")


def resolve(args: argparse.Namespace, role: str) -> argparse.Namespace:
    """Fill every setting the command line left out from the environment, the file, or its default."""
    settings: list[Setting] = getattr(args, "_settings", [])
    file = _file_values(getattr(args, "config", None) or os.environ.get("LOOT_CONFIG"), role, settings)
    for setting in settings:
        if hasattr(args, setting.dest):
            continue
        if os.environ.get(setting.env, "") != "":
            value = _convert(setting, os.environ[setting.env], f"${setting.env}")
        elif setting.key in file:
            value = _convert(setting, file[setting.key], f"{setting.key} in the config file")
        else:
            value = setting.default
        setattr(args, setting.dest, value)
    return args


def _convert(setting: Setting, value: Any, where: str) -> Any:
    try:
        return setting.convert(value)
    except (TypeError, ValueError) as error:
        raise SystemExit(f"loot: bad value {value!r} for {where}: {error}") from None


def _file_values(path: str | Path | None, role: str, settings: list[Setting]) -> dict[str, Any]:
    if not path:
        return {}
    try:
        document = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise SystemExit(f"loot: cannot read config file {path}: {error}") from None
    values = {key: value for key, value in document.items() if key not in ROLES}
    section = document.get(role, {})
    if not isinstance(section, dict):
        raise SystemExit(f"loot: [{role}] in {path} must be a table")
    values.update(section)
    own = {setting.key for setting in settings}
    # Top-level keys may belong to the other role: one file can serve the whole cluster.
    unknown = sorted({key for key in section if key not in own} | {key for key in values if key not in _ANY_ROLE})
    if unknown:
        raise SystemExit(f"loot: unknown setting(s) in {path}: {', '.join(unknown)}")
    return values
