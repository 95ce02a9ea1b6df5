"""TLS on every port (docs/operations.md), off unless configured.

Servers: `--tls-cert` and `--tls-key` (PEM) serve TLS; `--tls-client-ca` also
requires clients to present a certificate signed by that CA (mutual TLS) —
on shards, so only routers holding a cluster certificate get in. Routers:
`--shard-tls-ca` verifies the shards' certificates; `--shard-tls-cert` and
`--shard-tls-key` are the router's client certificate for mutual TLS.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import grpc

from loot.settings import add_flag


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--tls-cert", help="PEM certificate chain: serve TLS (with --tls-key)")
    add_flag(parser, "--tls-key", help="PEM private key for --tls-cert")
    add_flag(parser, "--tls-client-ca", help="PEM CA: require client certificates it signed (mutual TLS)")


def add_shard_client_flags(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--shard-tls-ca", help="PEM CA that signed the shards' certificates: reach shards over TLS")
    add_flag(parser, "--shard-tls-cert", help="PEM client certificate presented to shards (mutual TLS)")
    add_flag(parser, "--shard-tls-key", help="PEM private key for --shard-tls-cert")


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def server_credentials(args: argparse.Namespace) -> grpc.ServerCredentials | None:
    if not args.tls_cert and not args.tls_key:
        if args.tls_client_ca:
            raise SystemExit("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if not (args.tls_cert and args.tls_key):
        raise SystemExit("TLS needs both --tls-cert and --tls-key")
    client_ca = _read(args.tls_client_ca)
    return grpc.ssl_server_credentials([(_read(args.tls_key), _read(args.tls_cert))],
                                       root_certificates=client_ca, require_client_auth=client_ca is not None)


def shard_channel_credentials(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    if not args.shard_tls_ca:
        if args.shard_tls_cert or args.shard_tls_key:
            raise SystemExit("--shard-tls-cert/--shard-tls-key need --shard-tls-ca")
        return None
    if bool(args.shard_tls_cert) != bool(args.shard_tls_key):
        raise SystemExit("a client certificate needs both --shard-tls-cert and --shard-tls-key")
    return grpc.ssl_channel_credentials(root_certificates=_read(args.shard_tls_ca),
                                        private_key=_read(args.shard_tls_key),
                                        certificate_chain=_read(args.shard_tls_cert))


def shard_channel(address: str, credentials: grpc.ChannelCredentials | None, options: list) -> grpc.aio.Channel:
    """An asyncio channel to a shard: TLS with `credentials` (from shard_channel_credentials), else plaintext."""
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, credentials, options=options)
