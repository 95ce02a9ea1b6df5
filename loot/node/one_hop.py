"""The public loot.v1.Database service on a shard: the router's service, with calls for the databases this
shard owns run in-process.

Admission (token, allowlist, rate limit) and routing are the router's own code (loot/router/service.py).
Where a router would send the call to the owning shard, this one runs it itself when it is the owner:
through ShardService.run_public, the code the Forward stream runs, from the client's request bytes and the
token's cached Context, with no second RPC and no shard request built. A call for another shard's database
goes over the Forward streams exactly as a router sends it, under the same epoch rules; so does the retry
after a WRONG_SHARD refusal from a newer membership, local or not, for unary calls and for a transaction's
`begin` alike.

It is a DatabaseService in every other respect (the same methods, taking and returning serialized
messages, and `add_to`), so whatever serves the router's service (another transport) serves this one.
"""

from __future__ import annotations

import grpc
from google.rpc import status_pb2

from loot.membership import EPOCH_HEADER
from loot.router import transaction_forward
from loot.router.admission import Admission
from loot.router.forward_client import Refused, ShardStreams
from loot.router.service import DatabaseService
from loot.shard.service import ShardService
from loot.status import Fault
from loot.node.local_transaction import Envelope


class OneHopService(DatabaseService):
    def __init__(self, *args, local: ShardService, **kwargs):
        super().__init__(*args, **kwargs)
        self.local = local

    async def _send(self, method: str, admission: Admission, request: bytes, context: grpc.aio.ServicerContext,
                    name: str, shard: ShardStreams | None, routed_under: int) -> bytes:
        if name != self.local.name:
            # A client routing directly has an old topology: say which epoch this shard routes by, so it
            # refreshes (loot/sdk/routes.py). Routers pass through here too, and ignore it.
            context.set_trailing_metadata((*context.trailing_metadata(), (EPOCH_HEADER, str(routed_under))))
            return await super()._send(method, admission, request, context, name, shard, routed_under)
        try:
            response = await self.local.run_public(method, admission.context, request, self._timeout(context),
                                                   routed_under)
        except Fault as fault:
            if fault.reason != "WRONG_SHARD":
                raise
            raise Refused(fault.status_message()) from None  # the router's retry rule decides, as for a shard's answer
        return response.SerializeToString()

    async def _transact(self, admission: Admission, context: grpc.aio.ServicerContext) -> None:
        name, _, epoch = self.shards.for_database(admission.database_id)
        if name != self.local.name:
            await _forwarding(context, epoch)
            return await super()._transact(admission, context)
        envelope = Envelope(context, admission.context)
        try:
            await self.local.transact(envelope, epoch)
        except Fault as fault:
            # A `begin` refused here because a newer membership moved the database (read while the stream
            # opened, or while it waited for the database): nothing ran, so it goes once to the new owner,
            # as a router sends it once more; that owner's own refusal is final.
            if envelope.answered or envelope.first is None or not self._corrected_by(fault.status_message(), epoch):
                raise
            await _forwarding(context, self.shards.for_database(admission.database_id)[2])
            await transaction_forward.forward(context, admission.context_field, admission.database_id, self.shards,
                                              _final, envelope.first)


async def _forwarding(context: grpc.aio.ServicerContext, epoch: int) -> None:
    """A transaction goes to another shard: as for a unary call, say which epoch this shard routes by, so a
    client routing directly refreshes its topology. In the initial metadata, which the SDK reads once `begin`
    is answered (loot/sdk/transaction.py): a trailer would come only at the end, and never on a stream the
    client cancels."""
    await context.send_initial_metadata(((EPOCH_HEADER, str(epoch)),))


def _final(status: status_pb2.Status, epoch: int) -> bool:
    """No further correction: the refusal at this shard was the one a router would have retried."""
    return False
