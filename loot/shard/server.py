"""`loot shard`: run one shard process."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from loot import tls
import grpc

from loot.internal.v1 import shard_pb2, shard_pb2_grpc
from loot.membership import MembershipSource, add_membership_flags, membership_from_arguments
from loot.observability.handlers import observed_handler
from loot.observability.metrics import QUOTA_REFUSED, watch_account_usage, watch_databases
from loot.serving import Beside, add_operations_flags, add_servicer, new_server, serve
from loot.secret import accepted_secrets, cluster_secret
from loot.settings import add_flag
from loot.shard import limits as shard_limits
from loot.shard import memory
from loot.shard.backups_service import BackupsService
from loot.shard.cluster_auth import ClusterSecret
from loot.shard.databases import Databases
from loot.shard.handoff import files, retention
from loot.shard.handoff.fencing import Fencing
from loot.shard.handoff.peers import Peers
from loot.shard.handoff.progress import Progress, watch_progress
from loot.shard.handoff.puller import Puller
from loot.shard.handoff.service import HandoffService
from loot.shard.quotas import Quotas
from loot.shard.replica_target import ReplicaTarget, parse_target
from loot.shard.active_set import ActiveSet, unshipped
from loot.shard.replicator import META, Replicator, databases_within_descriptors, descriptors_short
from loot.shard.service import ShardService
from loot.shard.storage import SPARE_COPIES, Storage


log = logging.getLogger("loot.shard")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--name", required=False, help="this shard's stable name, e.g. shard-0")
    add_membership_flags(parser, "every shard's name[=host:port]")
    add_flag(parser, "--data", default="./loot-data/shard", help="directory holding this shard's databases")
    add_flag(parser, "--host", default="127.0.0.1", help="address to listen on")
    add_flag(parser, "--port", default=7071, type=int, help="port to listen on (0 = any free port)")
    add_flag(parser, "--handoff-concurrency", default=4, type=int,
             help="databases copied at once from their previous owners after a membership change")
    add_flag(parser, "--replica", default="",
             help="replicate every database continuously (Litestream) to this directory or s3://bucket/prefix, "
                  "the same for every shard (docs/backups.md); off when empty")
    add_flag(parser, "--replica-endpoint", default="",
             help="an S3-compatible store's URL for an s3:// --replica (credentials: AWS_* variables)")
    add_flag(parser, "--replica-retention", default=24.0, type=float,
             help="hours of history kept for restores to a point in time")
    add_flag(parser, "--replica-active", default=5.0, type=float,
             help="minutes a database stays in the replicator's set after its last request; an idle one leaves "
                  "once its last change is shipped, and a request brings it back first (docs/backups.md). "
                  "0: every database of the shard stays in the set")
    add_flag(parser, "--replica-interval", default=1.0, type=float,
             help="with --replica-active 0: seconds between looks at each database's changes: the replication "
                  "lag, and the idle CPU it costs per database, scale with it (docs/backups.md)")
    tls.add_shard_client_flags(parser)  # to reach the other shards for handoffs
    retention.add_arguments(parser)
    add_operations_flags(parser)
    shard_limits.add_arguments(parser)


# Given the shard's service and membership: the public API to serve beside the internal port (loot/node/).
PublicPort = Callable[[ShardService, MembershipSource], Awaitable[Beside]]


async def run(args: argparse.Namespace, public: PublicPort | None = None) -> None:
    if not args.name:
        raise SystemExit("loot shard needs --name (or LOOT_NAME)")
    membership = membership_from_arguments(args, "shard")
    # A fixed list can never come to name it; a file can, at a later epoch (a shard being added).
    if args.name not in membership.current.shards and membership.path is None:
        raise SystemExit(f"--name {args.name!r} is not in the shard list {', '.join(membership.current.shards)}")
    if args.handoff_concurrency < 0:
        raise SystemExit("--handoff-concurrency must be 0 (pull only on first request) or more")
    retention.check(args.keep_handed_off)
    target = _replica_target(args)
    limits = shard_limits.from_arguments(args)
    try:
        memory.enforce(memory.plan(limits, limits.workers))  # each worker converts one result at a time
    except ValueError as error:
        raise SystemExit(str(error)) from error
    quotas = Quotas(limits.account_databases, limits.account_bytes, args.name, membership,
                    lambda reason: QUOTA_REFUSED.labels(reason).inc())
    storage = Storage(Path(args.data), limits, SPARE_COPIES, catalog=True, quotas=quotas, replicated=target is not None)
    databases = Databases(storage, limits)
    replicator = _replicator(args, storage, databases, target) if target is not None else None
    watch_databases(databases.stats)
    watch_account_usage(lambda: [(account, usage.databases, usage.bytes) for account, usage in storage.catalog.usages()])
    progress = Progress()
    watch_progress(progress)
    fencing = Fencing(args.name, membership, databases)
    peers = Peers(cluster_secret(), tls.shard_channel_credentials(args))
    puller = Puller(args.name, membership, storage, peers, progress, args.handoff_concurrency)
    secret = ClusterSecret(*accepted_secrets())

    def protected(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The secret checked first; refusals observed too (the router needs no request id back)."""
        return observed_handler(method, secret.guard(method, handler), return_request_id=False)

    server = new_server(args.reuse_port)
    shard = ShardService(args.name, membership, databases, puller.ready)
    add_servicer(server, shard_pb2_grpc.add_ShardServicer_to_server, shard, protected)
    add_servicer(server, shard_pb2_grpc.add_HandoffServicer_to_server,
                 HandoffService(args.name, membership, storage, fencing, progress), protected)
    add_servicer(server, shard_pb2_grpc.add_BackupsServicer_to_server,
                 BackupsService(args.name, membership, databases, target), protected)
    beside = await public(shard, membership) if public is not None else None
    membership.start_watching(args.membership_poll)
    puller.start()
    if replicator is not None:
        short = None if databases.active is not None else descriptors_short(len(storage.catalog.ids()))
        if short:
            log.warning("%s (docs/backups.md)", short)
        if databases.active is not None:
            databases.active.start(unshipped(
                databases.active.journal, ((id_, storage.path(id_)) for id_ in storage.catalog.ids())))
        replicator.start()
    sweeping = asyncio.create_task(retention.keep_sweeping(storage.root / files.RETIRED, args.keep_handed_off))
    services = [shard_pb2.DESCRIPTOR.services_by_name[name].full_name for name in ("Shard", "Handoff", "Backups")]

    async def stop() -> None:
        sweeping.cancel()
        await peers.close()
        await databases.close()
        storage.catalog.close()  # its last writes' times, written out
        if databases.active is not None:
            await databases.active.stop()
        if replicator is not None:
            await replicator.stop()  # after the databases: it syncs their last writes before it exits

    await serve(server, args, role="shard", name=args.name, services=services, on_stop=stop,
                on_stopping=shard.forwarding.drain,
                wrap_reflection=secret.guard, beside=beside)  # health stays open to probes


def _replicator(args: argparse.Namespace, storage: Storage, databases: Databases, target: ReplicaTarget) -> Replicator:
    """The shard's Litestream; with --replica-active, replicating the databases of `databases.active`."""
    if args.replica_active <= 0:
        return Replicator(storage.root, args.name, target, args.replica_retention, args.replica_interval)
    replicator = Replicator(storage.root, args.name, target, args.replica_retention, controlled=True)
    databases.active = ActiveSet(replicator.socket, storage.path, target.database_url, args.replica_active * 60,
                                 storage.root / META / "joined", databases_within_descriptors())
    replicator.on_start = databases.active.litestream_started
    return replicator


def _replica_target(args: argparse.Namespace) -> ReplicaTarget | None:
    if not args.replica:
        if args.replica_endpoint:
            raise SystemExit("--replica-endpoint needs --replica s3://bucket/prefix")
        return None
    if args.replica_retention <= 0:
        raise SystemExit("--replica-retention must be more than 0 hours")
    if not 0 <= args.replica_active <= 24 * 60:
        raise SystemExit("--replica-active must be between 0 and 1440 minutes")
    if not 0.01 <= args.replica_interval <= 3600:
        raise SystemExit("--replica-interval must be between 0.01 and 3600 seconds")
    try:
        return parse_target(args.replica, args.replica_endpoint)
    except ValueError as error:
        raise SystemExit(str(error)) from error


def main(args: argparse.Namespace) -> None:
    asyncio.run(run(args))
