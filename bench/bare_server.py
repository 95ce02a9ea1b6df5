"""The baseline: a bare grpc.aio server answering loot.v1.Database/Execute with
fixed response bytes, with the same server options as Loot's, and no work.

Run as a process: `python bench/bare_server.py RESPONSE_FILE` prints its port,
then serves until stdin closes.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loot.grpc_options import GRPC_OPTIONS  # noqa: E402
from loot.v1 import database_pb2 as pb  # noqa: E402

METHOD = "Execute"
SERVICE = "loot.v1.Database"


async def serve(response: bytes) -> None:
    async def execute(request: pb.ExecuteRequest, context: grpc.aio.ServicerContext) -> bytes:
        return response

    handler = grpc.unary_unary_rpc_method_handler(
        execute, request_deserializer=pb.ExecuteRequest.FromString, response_serializer=None)
    server = grpc.aio.server(options=GRPC_OPTIONS)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop(1)


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1]).read_bytes()))
