"""What a statement returns, as Python values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loot.v1 import database_pb2 as pb
from loot.values import from_value


@dataclass
class Result:
    """One statement's result. `rows` are tuples; `dicts()` keys them by column name."""

    columns: list[str]
    decltypes: list[str]
    rows: list[tuple[Any, ...]]
    rows_read: int = 0
    rows_written: int = 0
    last_insert_rowid: int | None = None
    schema_changes: list[str] = field(default_factory=list)
    destroyed: bool = False

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]

    def scalar(self) -> Any:
        """The first column of the first row, or None when there are no rows."""
        return self.rows[0][0] if self.rows else None

    @classmethod
    def from_proto(cls, result: pb.Result, schema_changes=(), destroyed: bool = False) -> Result:
        return cls(
            columns=[column.name for column in result.columns],
            decltypes=[column.decltype for column in result.columns],
            rows=[tuple(from_value(value) for value in row.values) for row in result.rows],
            rows_read=result.rows_read,
            rows_written=result.rows_written,
            last_insert_rowid=result.last_insert_rowid if result.HasField("last_insert_rowid") else None,
            schema_changes=list(schema_changes),
            destroyed=destroyed,
        )


class BatchResults(list):
    """A Result per statement, plus what the request as a whole did."""

    def __init__(self, results: list[Result], schema_changes=(), destroyed: bool = False):
        super().__init__(results)
        self.schema_changes = list(schema_changes)
        self.destroyed = destroyed


def from_execute(response: pb.ExecuteResponse) -> Result:
    return Result.from_proto(response.result, response.schema_changes, response.destroyed)


def from_batch(response: pb.BatchResponse) -> BatchResults:
    results = [Result.from_proto(result) for result in response.results]
    return BatchResults(results, response.schema_changes, response.destroyed)
