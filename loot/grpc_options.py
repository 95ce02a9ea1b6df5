"""gRPC channel options every Loot client and server uses: the message and metadata sizes.

Tokens of up to 64 KiB travel in metadata (docs/tokens.md); results of up to 48 MiB in
messages (docs/shard.md, limits). Kept apart from the servers' plumbing (loot/serving.py)
so that the SDK imports no server code."""

MAX_METADATA = 80 * 1024
MAX_MESSAGE = 64 * 1024 * 1024
GRPC_OPTIONS = [
    ("grpc.max_metadata_size", MAX_METADATA),
    ("grpc.absolute_max_metadata_size", MAX_METADATA),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
]
