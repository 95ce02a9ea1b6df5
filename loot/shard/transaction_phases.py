"""An interactive transaction's phases on its database (docs/transactions.md), each run on a worker thread
while the transaction's lease holds the database (loot/shard/databases.py).

They are engine.py's phases, spread over the stream's messages: `begin` is the schema phase, BEGIN
IMMEDIATE and `before`; `statements` runs each statement exactly as Execute does; `end` is `after` and
COMMIT (or a ROLLBACK); `abandon` rolls back whatever is left open. Each phase is one sandbox request
with the transaction's deadline (its total limit, or the client's deadline if sooner).

A statement's error leaves the transaction open, as in SQLite, unless it ended it: SQLite rolled the
transaction back itself (an interrupted write, a full disk, out of memory) or a time limit stopped the
statement; then it is rolled back and the error says so (ABORTED, TRANSACTION_ABORTED).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import apsw
import grpc

from loot.internal.v1 import shard_pb2
from loot.status import Fault
from loot.v1 import database_pb2 as pb
from loot.shard import engine
from loot.shard.access.enforcer import Enforcer, for_connection
from loot.shard.storage import OpenDatabase


class TransactionPhases:
    def __init__(self, context: shard_pb2.Context, deadline: float | None):
        self.context = context
        self.deadline = deadline  # monotonic
        self.open = False  # BEGIN ran and neither COMMIT nor ROLLBACK has

    def begin(self, database: OpenDatabase) -> pb.TransactionBegun:
        sandbox = database.sandbox
        with sandbox.request(self.deadline):
            sandbox.check_deadline()
            changes = engine.apply_schema(database, self.context.schema)
            sandbox.check_deadline()
            sandbox.start_clock()  # for `before`
            with self._access(database) as access:
                engine.begin(access, self.context.before)
        self.open = True
        return pb.TransactionBegun(schema_changes=changes)

    def statements(self, database: OpenDatabase, statements: Sequence[pb.Statement]) -> pb.BatchResponse:
        sandbox = database.sandbox
        budget = engine.Budget(sandbox.limits.result_bytes)
        with sandbox.request(self.deadline), self._access(database) as access:
            try:
                sandbox.check_deadline()
                return pb.BatchResponse(results=[
                    engine.run_one(database, access, statement, index, self.context.instead, budget, False)
                    for index, statement in enumerate(statements)])
            except Fault as fault:
                if database.conn.get_autocommit() or sandbox.timed_out:
                    engine.rollback(access)
                    self.open = False
                    raise _aborted(fault) from None
                raise

    def end(self, database: OpenDatabase, commit: bool) -> pb.TransactionEnded:
        sandbox = database.sandbox
        with sandbox.request(self.deadline), self._access(database) as access:
            self.open = False
            if not commit:
                engine.rollback(access)
                return pb.TransactionEnded(committed=False)
            sandbox.start_clock()  # for `after`
            sandbox.commit_by_deadline()
            try:
                engine.commit(access, self.context.after)
            except BaseException as error:
                engine.rollback(access)
                if isinstance(error, (apsw.ConstraintError, apsw.InterruptError)) and sandbox.timed_out:
                    raise _aborted(sandbox.fault(error)) from None  # COMMIT refused or interrupted
                raise
        if self.context.destroy:
            database.destroy()
        return pb.TransactionEnded(committed=True, destroyed=self.context.destroy)

    def abandon(self, database: OpenDatabase) -> None:
        """Roll back what is still open (the stream ended, failed or ran out of time)."""
        if self.open:
            self.open = False
            with self._access(database) as access:
                engine.rollback(access)

    @contextlib.contextmanager
    def _access(self, database: OpenDatabase) -> Iterator[Enforcer]:
        access = for_connection(database.conn)
        with access.request(self.context.claims_json, self.context.readonly):
            yield access


def _aborted(fault: Fault) -> Fault:
    return Fault(grpc.StatusCode.ABORTED, "TRANSACTION_ABORTED",
                 f"the transaction was rolled back, nothing of it applied: {fault.message}",
                 cause=fault.reason, **fault.metadata)
