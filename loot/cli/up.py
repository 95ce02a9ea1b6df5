"""`loot up`: a local cluster (one router, N shards) in the foreground; `loot scale` changes N."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from loot.cli import scale_requests
from loot.cli.local_cluster import LocalCluster
from loot.cli.supervisor import GaveUp, RestartPolicy, Supervisor


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=7070, help="router port (default 7070)")
    parser.add_argument("--http-port", type=int, help="the router's HTTP port: Connect, gRPC-Web and the playground "
                        "(default: --port + 10, or any free port with --port 0; docs/http.md)")
    parser.add_argument("--data", type=Path, default=Path("loot-data"), help="data directory, reused on restart (default ./loot-data)")
    parser.add_argument("--shards", type=int, default=2, help="number of shard processes (default 2; "
                        "a data directory scaled by `loot scale` keeps its own number)")
    parser.add_argument("--metrics", action="store_true",
                        help="each process serves Prometheus metrics on a free port (printed at start)")
    parser.add_argument("--replica", default="",
                        help="replicate every database continuously to this directory or s3://bucket/prefix "
                             "(each shard's --replica; docs/backups.md); off by default")
    parser.add_argument("--replica-endpoint", default="",
                        help="an S3-compatible store's URL for an s3:// --replica (credentials: AWS_* variables)")
    parser.add_argument("--max-restarts", type=int, default=RestartPolicy.max_restarts,
                        help="a router or shard that exits is started again, up to this many times within "
                             f"--restart-window; once more stops the cluster (default {RestartPolicy.max_restarts})")
    parser.add_argument("--restart-window", type=float, default=RestartPolicy.window,
                        help=f"seconds over which --max-restarts counts (default {RestartPolicy.window:g})")


def run(args: argparse.Namespace) -> None:
    if args.shards < 1:
        sys.exit("loot: --shards must be at least 1")
    if args.max_restarts < 0 or args.restart_window <= 0:
        sys.exit("loot: --max-restarts must be 0 or more and --restart-window more than 0")
    if scale_requests.running_up(args.data):
        sys.exit(f"loot: a `loot up` already runs on {args.data}")
    env = {"LOOT_METRICS_PORT": "0"} if args.metrics else {}
    http_port = args.http_port if args.http_port is not None else args.port + 10 if args.port else 0
    env.update(_replica_env(args))
    cluster = LocalCluster(args.data, port=args.port, shards=args.shards, membership_file=True, env=env,
                           http_port=http_port)
    if len(cluster.names) != args.shards:
        print(f"loot: {args.data} has {len(cluster.names)} shards (set by `loot scale`); starting those", flush=True)
    stop, scale = threading.Event(), threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    signal.signal(scale_requests.SIGNAL, lambda *_: scale.set())
    try:
        address = cluster.start()
    except RuntimeError as error:
        cluster.stop()
        sys.exit(f"loot: {error}")
    scale_requests.mark_running(args.data)
    supervisor = Supervisor(cluster, RestartPolicy(args.max_restarts, args.restart_window),
                            lambda line: print(line, flush=True))
    try:
        print(_banner(address, args.data, cluster), flush=True)
        if args.metrics:
            print(_metrics(cluster), flush=True)
        _supervise(cluster, supervisor, args.data, stop, scale)
        print("loot: stopping…", flush=True)
    except GaveUp as error:
        print(f"loot: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
    finally:
        scale_requests.mark_stopped(args.data)
        cluster.stop()


def _replica_env(args: argparse.Namespace) -> dict[str, str]:
    """The shards' replica settings; a directory made absolute, as the shards run elsewhere."""
    if not args.replica:
        return {}
    replica = args.replica if "://" in args.replica else str(Path(args.replica).resolve())
    return {"LOOT_REPLICA": replica, "LOOT_REPLICA_ENDPOINT": args.replica_endpoint}


def _supervise(cluster: LocalCluster, supervisor: Supervisor, data: Path, stop: threading.Event,
               scale: threading.Event) -> None:
    while not stop.wait(0.5):
        if scale.is_set():
            scale.clear()
            _scale(cluster, supervisor, data)
        supervisor.check()


def _scale(cluster: LocalCluster, supervisor: Supervisor, data: Path) -> None:
    request = scale_requests.take(data)
    if request is None:
        return
    request_id, count = request
    print(f"loot: scaling to {count} shard(s)", flush=True)

    def progress(epoch: int, statuses: dict) -> None:
        scale_requests.report(data, request_id, epoch, statuses)
        supervisor.check()  # a process that exits while databases move is restarted too

    try:
        membership = cluster.scale(count, progress)
    except (RuntimeError, ValueError, GaveUp) as error:
        scale_requests.report(data, request_id, cluster.epoch, {}, done=True, error=str(error))
        print(f"loot: scaling failed: {error}", file=sys.stderr, flush=True)
        if isinstance(error, GaveUp):
            raise
        return
    scale_requests.report(data, request_id, membership.epoch,
                          {name: cluster.handoff_status(name) for name in membership.shards}, done=True)
    print(f"loot: {count} shard(s) at membership epoch {membership.epoch}", flush=True)


def _metrics(cluster: LocalCluster) -> str:
    return "Metrics: " + ", ".join(f"{child.name} http://{child.metrics}/metrics" for child in cluster.children())


def _banner(address: str, data: Path, cluster: LocalCluster) -> str:
    public = ", ".join(f"{shard.name} {shard.public}" for shard in cluster.shards.values())
    return f"""
Loot is up: router on {address}, data in {data}/ (Ctrl-C stops it).
HTTP (Connect, gRPC-Web, the playground): {cluster.http}/
Shards' public ports: {public}.
The Python SDK given {address} sends each call straight to its database's shard (docs/sdk.md).
Try it from another terminal:

    loot keygen
    loot sql --router {address} --db app --tenant alice \\
        --schema "CREATE TABLE notes (body TEXT);
        INSERT INTO _filters VALUES ('notes', 'all', 'true'); INSERT INTO _rules VALUES ('notes', 'write', 'all', 'true')" \\
        "INSERT INTO notes VALUES (?)" hello
    loot sql --router {address} --db app --tenant alice "SELECT * FROM notes"
"""
