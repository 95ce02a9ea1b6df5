"""A budget of whole-value operations per statement, counted in its compiled program (docs/shard.md,
"Time and fairness").

SQLite looks at its clock (progress handler, sqlite3_interrupt) only where its program jumps back: at a
loop's end and at Goto. Between two such jumps the program runs straight through, and one operation on a
16 MiB value takes 4-80 ms (`printf`, `randomblob`, `hex`, `upper`, `||`; comparing, copying or
converting it, loading a big column again), so one row of hundreds of them overran a 1 s limit by seconds
to minutes. The program is the truth about what one row does: a subquery SQLite flattens copies its
expressions to every place that names its column (`SELECT length(v) + length(v) ... FROM (SELECT
printf(..., x) AS v FROM t)` runs `printf` once per `length`), which counting names in the SQL would miss.

So before the request's own statement runs, its program (apsw's `explain=1` on the statement about to
run, from the statement cache: prepared once) is read and these operations counted, in the main program
(triggers are the application's own SQL):

- a call of any function but the cheap ones (numbers, dates, type tests, Loot's own: a quarter or nothing)
  and the bounded ones, which check the clock themselves (loot/shard/bounded_functions.py);
- `||` (Concat);
- a quarter of one for each comparison, copy, cast, arithmetic, truth test, numeric or scanning call
  (`length`, `abs`, `sqrt`, `date` ...) and load of a column the program already loaded (the same cursor
  and column): they read, copy or convert a value, 4-45 ms at 16 MiB (converting a text of digits to a
  number reads every digit) against 20-80 ms for the others.

More than the limit (`--value-operations`) is refused, RESOURCE_EXHAUSTED `TOO_EXPENSIVE`, before any
step runs. Statements that can hold none of them cheaply (no `(`, `|` or `->`, and short) are not read;
counts of short SQL are kept until the schema or policy changes (switching a statement to EXPLAIN and
back prepares it twice).

Not counted: building an IN list's index and a record (MakeRecord, IdxInsert: ordinary in long lists of
parameters, and a record is at most one value limit), the first load of each column (a row is at most one
value limit), and the rest of SQLite's opcodes, whose cost does not depend on a value's size.
"""

from __future__ import annotations

from typing import Any

import apsw
import grpc

from loot.byte_lru import ByteLRU
from loot.shard.sql_text import iter_tokens
from loot.status import Fault

# Longer SQL is read whatever it holds: a column named again and again needs no `(` (`a < b AND a < b ...`),
# nor does naming a view's column again and again.
_SHORT_SQL = 64
# What one operation counts, in quarters: one that builds or transforms a whole value, and one that reads,
# copies or converts it (a comparison, a copy, arithmetic, a truth test, a numeric function, a column loaded
# again): 4-45 ms on 16 MiB (a numeric conversion reads every digit) against 20-80 ms for the others.
_BUILD, _SCAN = 4, 1
_SCANS = frozenset({
    "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "Copy", "Cast", "Affinity", "MustBeInt",
    "Add", "Subtract", "Multiply", "Divide", "Remainder", "BitAnd", "BitOr", "ShiftLeft", "ShiftRight", "BitNot",
    "If", "IfNot", "IsTrue", "Not",
})
_SCANNING_FUNCTIONS = frozenset({
    "length", "min", "max", "abs", "round", "sign", "claim",
    "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos", "cosh", "degrees",
    "exp", "floor", "ln", "log", "log10", "log2", "mod", "pow", "power", "radians", "sin", "sinh",
    "sqrt", "tan", "tanh", "trunc",
    "date", "time", "datetime", "julianday", "unixepoch",
})
# Functions whose cost does not depend on a value's size, and the bounded functions, which check the
# statement's clock before each call.
_FREE = frozenset({
    "changes", "coalesce", "ifnull", "iif", "if", "nullif", "likely", "unlikely", "likelihood",
    "last_insert_rowid", "random", "total_changes", "typeof", "subtype", "octet_length", "unicode", "pi",
    "sqlite_version", "sqlite_source_id", "loot_privileged", "loot_policy_written",
    "instr", "replace", "like", "glob",
})
_CALLS = frozenset({"Function", "PureFunc"})
_CACHED_SQL_CHARS = 4096
_CACHED_COUNTS = 1024


def may_be_costly(sql: str) -> bool:
    """Whether the statement may hold whole-value operations, so its program is worth reading."""
    return len(sql) > _SHORT_SQL or "(" in sql or "|" in sql or "->" in sql


def check(conn: apsw.Connection, sql: str, bindings: Any, limit: int, index: int, compiled_for: object) -> None:
    """Refuse the statement `sql` (the first in it) if its program holds more than `limit` whole-value
    operations. Errors preparing it are left to the run that follows, which reports them. `compiled_for`
    is replaced whenever the schema may have changed: counts are kept per SQL text until it is."""
    kept = _counts.get(sql)
    quarters = kept[1] if kept is not None and kept[0] is compiled_for else None
    if quarters is None:
        cursor = conn.cursor()
        try:
            quarters = _quarters(cursor, sql, bindings)
        except (apsw.Error, KeyError):
            return
        finally:
            cursor.close(force=True)
        if len(sql) <= _CACHED_SQL_CHARS:
            _counts.put(sql, (compiled_for, quarters))
    if quarters > limit * _BUILD:
        raise Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_EXPENSIVE",
                    f"the statement makes or reads whole values {quarters / _BUILD:g} times in one program "
                    "(functions such as printf, hex, upper, substr, and ||; a comparison, copy, arithmetic or length "
                    f"counts 1/4); at most {limit} are allowed, as SQLite cannot stop one row's worth of them at the "
                    "time limit: split it into several statements", statement_index=index, limit=limit)


# The last count (in quarters) by SQL text, with what it was compiled for: one entry per text, replaced when
# the schema or policy changes. Short SQL only, so bounded in bytes (_CACHED_SQL_CHARS x _CACHED_COUNTS);
# an entry's size is its text's (what it was compiled for is shared with the connection).
_counts: ByteLRU[str, tuple[object, int]] = ByteLRU(
    (_CACHED_SQL_CHARS + 64) * _CACHED_COUNTS, size=lambda sql, kept: len(sql) + 64, max_entries=_CACHED_COUNTS)


def _quarters(cursor: apsw.Cursor, sql: str, bindings: Any) -> int:
    """The whole-value operations of the first statement's main program, in quarters."""
    statements = 0

    def first_only(*_: Any) -> bool:
        nonlocal statements
        statements += 1
        return statements == 1

    cursor.exec_trace = first_only
    count, last, loaded = 0, -1, set()
    try:
        program = cursor.execute(_without_blob_bytes(sql), bindings, explain=1, can_cache=False)
        for address, opcode, p1, p2, _p3, p4, *_ in program:
            if address <= last:  # a trigger's program: the application's own SQL
                break
            last = address
            if opcode in _CALLS:
                name = _function_name(p4)
                count += _SCAN if name in _SCANNING_FUNCTIONS else 0 if name in _FREE else _BUILD
            elif opcode == "Concat":
                count += _BUILD
            elif opcode in _SCANS:
                count += _SCAN
            elif opcode == "Column":
                count += _SCAN if (p1, p2) in loaded else 0
                loaded.add((p1, p2))
    except apsw.ExecTraceAbort:
        pass  # a second statement: the run itself refuses it
    return count


def _function_name(p4: str | None) -> str:
    """`printf(-1)` -> `printf`: EXPLAIN shows a call's function with its argument count."""
    name = p4 or ""
    return name[:name.rfind("(")] if "(" in name else name


def _without_blob_bytes(sql: str) -> str:
    """`sql` with each blob literal emptied: the program keeps its shape (a Blob opcode where each was),
    and apsw need not decode the literal's bytes as text, which it cannot when they are not UTF-8."""
    if "x'" not in sql and "X'" not in sql:
        return sql
    blobs = [token for token in iter_tokens(sql) if token.kind == "blob"]
    for token in reversed(blobs):
        sql = sql[:token.start] + "x''" + sql[token.end:]
    return sql
