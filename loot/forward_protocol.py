"""The Forward protocol's shared terms: router -> shard calls as messages on long-lived streams.

Its two ends are a pair: loot/router/forward_client.py sends calls, loot/shard/forward_server.py
runs them. The protocol is written down once, in docs/architecture.md ("The Forward stream");
the messages are in protos/loot/internal/v1/shard.proto. What both ends agree on beyond the
proto lives here."""

from __future__ import annotations

from loot.grpc_options import MAX_MESSAGE

# Sent by a shard as a Forward stream's initial metadata once it admitted the stream (cluster
# secret checked) and started reading it. A stream that fails before the router saw it was never
# read: none of its calls ran, so the router may send them again.
ACCEPTED = ("loot-forward", "accepted")

# The largest request or response bytes a Forwarded or Answered carries: room for the message's
# other fields under gRPC's limit. A bigger message would make gRPC fail the whole stream, every
# call on it included, so each end refuses that one call instead.
MAX_PAYLOAD = MAX_MESSAGE - 4096
