"""What the router and the shard agree on about `Shard.Forward` beyond the proto."""

from __future__ import annotations

from loot.serving import MAX_MESSAGE

# Sent by a shard as a Forward stream's initial metadata once it admitted the stream (cluster
# secret checked) and started reading it. A stream that fails before the router saw it was never
# read: none of its calls ran, so the router may send them again.
ACCEPTED = ("loot-forward", "accepted")

# The largest request or response bytes a Forwarded or Answered carries: room for the message's
# other fields under gRPC's limit. A bigger message would make gRPC fail the whole stream, every
# call on it included, so each end refuses that one call instead.
MAX_PAYLOAD = MAX_MESSAGE - 4096
