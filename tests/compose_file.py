"""Reading compose.yaml the way `docker compose` does: YAML anchors and merge keys, then
`${VAR}`, `${VAR:-default}` and `${VAR:?error}` interpolation from the environment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariable(Exception):
    pass


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, str):
        return _VARIABLE.sub(lambda match: _substitute(match, env), value)
    return value


def _substitute(match: re.Match, env: Mapping[str, str]) -> str:
    if match.group(0) == "$$":
        return "$"
    name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
    value = env.get(name)
    unset = value is None or (op.startswith(":") and value == "")
    if unset and op.endswith("?"):
        raise MissingVariable(arg or f"{name} is required")
    if unset and op.endswith("-"):
        return arg
    return value or ""


def load(env: Mapping[str, str]) -> dict[str, Any]:
    return interpolate(yaml.safe_load(COMPOSE.read_text()), env)


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping (compose also allows a list of KEY=VALUE)."""
    value = service.get("environment") or {}
    if isinstance(value, list):
        value = dict(item.split("=", 1) for item in value)
    return {key: "" if item is None else str(item) for key, item in value.items()}
