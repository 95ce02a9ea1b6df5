"""`loot router`: run one router process."""

from __future__ import annotations

import argparse
import asyncio

from loot import tls
from loot.http import flags as http
from loot.membership import add_membership_flags, membership_from_arguments
from loot.observability.metrics import watch_calls_in_flight
from loot.serving import add_operations_flags, new_server, serve
from loot.secret import SECRET_HEADER, cluster_secret
from loot.settings import add_flag, positive_number
from loot.tokens.claims import MAX_LIFETIME
from loot.router import allowlist, rate_limits
from loot.router.account_service import SERVICE as ACCOUNT_SERVICE, AccountService
from loot.router.auth import verified_tokens
from loot.router.service import SERVICE, DatabaseService
from loot.router.shards import Shards


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_membership_flags(parser, "every shard's name=host:port")
    add_flag(parser, "--host", default="127.0.0.1", help="address to listen on")
    add_flag(parser, "--port", default=7070, type=int, help="port to listen on (0 = any free port)")
    add_flag(parser, "--forward-timeout", default=30.0, type=float,
             help="longest wait for a shard, in seconds, when the client sets no deadline")
    add_flag(parser, "--max-token-lifetime", default=MAX_LIFETIME, type=positive_number,
             help="longest token lifetime accepted, in seconds (`exp` - `iat`); tokens without `exp` are refused")
    allowlist.add_arguments(parser)
    rate_limits.add_arguments(parser)
    add_operations_flags(parser)
    tls.add_shard_client_flags(parser)
    http.add_arguments(parser)


async def run(args: argparse.Namespace) -> None:
    accounts = allowlist.from_arguments(args, "router")
    limits = rate_limits.from_arguments(args, "router", label_accounts=accounts.listed is not None)
    source = membership_from_arguments(args, "router")
    try:
        shards = Shards(source, (SECRET_HEADER, cluster_secret()), tls.shard_channel_credentials(args))
    except ValueError as error:
        raise SystemExit(f"loot router: {error}") from None
    source.start_watching(args.membership_poll)
    accounts.start_watching(args.accounts_poll)
    server = new_server(args.reuse_port)  # the service observes its own handlers
    tokens = verified_tokens(args.max_token_lifetime)
    service = DatabaseService(shards, args.forward_timeout, tokens, accounts, limits)
    handlers = service.add_to(server)
    AccountService(shards, args.forward_timeout, tokens, accounts, limits).add_to(server)
    watch_calls_in_flight(lambda: service.in_flight)
    http_port = await http.start_http(handlers, args, "router", "router")

    def stopping() -> None:
        service.stopping(args.shutdown_grace)
        if http_port is not None:
            http_port.stop()

    async def stop() -> None:
        if http_port is not None:
            await http_port.stopped()
        await shards.close()

    await serve(server, args, role="router", name="router", services=[SERVICE, ACCOUNT_SERVICE], on_stop=stop,
                on_stopping=stopping)


def main(args: argparse.Namespace) -> None:
    asyncio.run(run(args))
