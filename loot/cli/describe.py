"""`loot describe`: a database's tables, indexes, views, triggers, filters and rules."""

from __future__ import annotations

import argparse

from google.protobuf import json_format

from loot.cli import target
from loot.cli.sql import add_router_argument, connect


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_router_argument(parser)
    target.add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the DescribeResponse as JSON")


def run(args: argparse.Namespace) -> None:
    with connect(args) as client:
        description = target.open_database(client, args).describe()
    print(json_format.MessageToJson(description) if args.json else text(description))


def text(description) -> str:
    lines = []
    for table in description.tables:
        lines.append(f"table {table.name}" + " (no filter: reads as empty; add one to _filters)" * table.no_filter)
        for column in table.columns:
            flags = [column.type or "ANY"] + (["PRIMARY KEY"] if column.pk else []) + (["NOT NULL"] if column.not_null else [])
            if column.HasField("default"):
                flags.append(f"DEFAULT {column.default}")
            lines.append(f"  {column.name} {' '.join(flags)}")
    lines += [f"index {i.name} ON {i.table} ({', '.join(i.columns)}){' UNIQUE' * i.unique}" for i in description.indexes]
    lines += [f"view {view.name}" for view in description.views]
    lines += [f"trigger {trigger.name} ON {trigger.table}" for trigger in description.triggers]
    lines += [f"filter {f.table}.{f.name}: {f.predicate}" for f in description.filters]
    lines += [f"rule {r.table}.{r.name} ({r.operation}): {r.predicate}" for r in description.rules]
    lines.append(f"schema hash {description.schema_hash}")
    return "\n".join(lines)
