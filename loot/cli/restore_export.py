"""`loot restore`, `loot export`, `loot import`: one database's stored state, by an operator
(the cluster secret; docs/backups.md). The owner shard does the work (Backups service), so every
other database keeps serving."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc

from loot.cli import shard_calls
from loot.cli.target import UserError
from loot.internal.v1 import shard_pb2, shard_pb2_grpc
from loot.status import error_info

CHUNK = 256 * 1024
TIMEOUT = 3600.0


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    shard_calls.add_database_arguments(parser)
    parser.add_argument("--at", default="latest",
                        help="the time to go back to, ISO 8601 (2026-01-02T15:04:05Z; no zone = UTC), or "
                             "`latest` (default): the last replicated state")
    parser.add_argument("--to-tenant",
                        help="restore as a branch: a new tenant of the same account and name holding that state, "
                             "independent from then on (default: replace the database in place)")
    shard_calls.add_cluster_arguments(parser)


def restore(args: argparse.Namespace) -> None:
    source = shard_calls.named(args)
    target = shard_calls.named(args, tenant=args.to_tenant) if args.to_tenant is not None else source
    if args.to_tenant is not None and source.row is None:
        raise UserError("--to-tenant needs the source named by --db and --tenant, not --id")
    request = shard_pb2.RestoreRequest(database_id=target.database_id, source_id=source.database_id,
                                       timestamp="" if args.at == "latest" else args.at, row=target.row)
    shards = shard_calls.shards(args)
    placed = _call(shards, target.database_id, lambda stub: stub.Restore(request, metadata=shards.metadata,
                                                                         timeout=TIMEOUT))
    where = f"branch {target.database_id}" if target is not source else f"database {target.database_id} in place"
    print(f"restored {where} as of {args.at} ({placed.bytes} bytes)")


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    shard_calls.add_database_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="the SQLite file to write (must not exist)")
    parser.add_argument("--internal-tables", action="store_true",
                        help="keep Loot's tables (_filters, _rules, _loot_*) and the replicator's (_litestream_*)")
    shard_calls.add_cluster_arguments(parser)


def export(args: argparse.Namespace) -> None:
    database = shard_calls.named(args)
    if args.out.exists():
        raise UserError(f"{args.out} exists; export into a new file")
    shards = shard_calls.shards(args)
    request = shard_pb2.ExportRequest(database_id=database.database_id, internal_tables=args.internal_tables)
    partial = args.out.with_name(args.out.name + ".partial")
    try:
        with open(partial, "wb") as file:
            def read(stub: shard_pb2_grpc.BackupsStub) -> None:
                for chunk in stub.Export(request, metadata=shards.metadata, timeout=TIMEOUT):
                    file.write(chunk.data)
            _call(shards, database.database_id, read)
        partial.rename(args.out)
    finally:
        partial.unlink(missing_ok=True)
    print(f"exported database {database.database_id} to {args.out} ({args.out.stat().st_size} bytes)")


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="a SQLite database file")
    shard_calls.add_database_arguments(parser, by_id=False)
    shard_calls.add_cluster_arguments(parser)


def import_(args: argparse.Namespace) -> None:
    if not args.file.is_file():
        raise UserError(f"{args.file} is not a file")
    database = shard_calls.named(args)
    shards = shard_calls.shards(args)

    def chunks() -> Iterator[shard_pb2.ImportChunk]:
        with open(args.file, "rb") as file:
            yield shard_pb2.ImportChunk(database_id=database.database_id, row=database.row, data=file.read(CHUNK))
            while data := file.read(CHUNK):
                yield shard_pb2.ImportChunk(data=data)

    placed = _call(shards, database.database_id,
                   lambda stub: stub.Import(chunks(), metadata=shards.metadata, timeout=TIMEOUT))
    print(f"imported {args.file} as database {database.database_id} ({placed.bytes} bytes)")
    if not _has_policy(args.file):
        print("note: the file had no _filters or _rules: its tables read as empty until a schema claim "
              "opens them (docs/access.md); `loot export --internal-tables` keeps them")


def _has_policy(path: Path) -> bool:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '_filters'"
                            ).fetchone()[0] > 0


def _call(shards: shard_calls.Shards, database_id: str, call):
    """`call(stub)` on the owner shard; its refusal becomes the command's error message."""
    address = shards.owner(database_id)
    with shards.channel(address) as channel:
        try:
            return call(shard_pb2_grpc.BackupsStub(channel))
        except grpc.RpcError as error:
            info = error_info(error)
            reason = f" ({info.reason})" if info is not None else ""
            print(f"loot: {error.details()}{reason}", file=sys.stderr)
            raise SystemExit(1) from None
