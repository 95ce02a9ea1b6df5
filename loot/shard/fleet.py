"""A shard's answers to the account methods (docs/fleet.md), read from its catalog."""

from __future__ import annotations

from loot import listing
from loot.internal.v1 import shard_pb2
from loot.v1 import database_pb2 as pb
from loot.shard.catalog import Catalog


def list_databases(catalog: Catalog, request: shard_pb2.ShardListDatabasesRequest) -> pb.ListDatabasesResponse:
    """Up to a page of the account's databases held here, after the page token's (name, tenant)."""
    wanted = request.request
    entries = catalog.page(request.context.account, wanted.name, wanted.tenant_prefix,
                           listing.after(wanted.page_token), listing.page_size(wanted.page_size))
    return pb.ListDatabasesResponse(databases=[
        pb.DatabaseInfo(name=entry.name, tenant=entry.tenant, created=entry.created, last_write=entry.last_write,
                        bytes=entry.bytes, schema_hash=entry.schema_hash) for entry in entries])


def census(catalog: Catalog, request: shard_pb2.ShardCensusRequest) -> pb.CensusResponse:
    groups = catalog.census(request.context.account, request.request.name)
    return pb.CensusResponse(
        groups=[pb.CensusGroup(name=group.name, schema_hash=group.schema_hash, databases=group.databases,
                               bytes=group.bytes) for group in groups],
        databases=sum(group.databases for group in groups), bytes=sum(group.bytes for group in groups))
