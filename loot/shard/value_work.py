"""A budget of whole-value operations per statement, counted in its compiled program (docs/shard.md,
"Time and fairness").

SQLite looks at its clock (progress handler, sqlite3_interrupt) only where its program jumps back: at a
loop's end and at Goto. Between two such jumps the program runs straight through, and one operation on a
16 MiB value takes 10-80 ms (`printf`, `randomblob`, `hex`, `upper`, `||`, loading a big column again), so
one row of hundreds of them overran a 1 s limit by seconds to minutes. The program is the truth about what
one row does: a subquery SQLite flattens copies its expressions to every place that names its column
(`SELECT length(v) + length(v) ... FROM (SELECT printf(..., x) AS v FROM t)` runs `printf` once per
`length`), which counting function names in the SQL text would miss.

So before the request's own statement runs, its program (apsw's `explain=1` on the statement about to
run, from the statement cache: prepared once) is read and these operations counted, in the main program
(triggers are the application's own SQL):

- a call of any function but the cheap ones (`_CHEAP`: numbers, dates, type tests, Loot's own) and the
  bounded ones, which check the clock themselves (loot/shard/bounded_functions.py);
- `||` (Concat);
- a column load of a column the program already loaded (the same cursor and column), which reads a big
  value again.

More than the limit (`--value-operations`) is refused, RESOURCE_EXHAUSTED `TOO_EXPENSIVE`, before any
step runs. Statements that can hold none of them cheaply (no `(`, `|` or `->`, and short) are not read.
"""

from __future__ import annotations

from typing import Any

import apsw
import grpc

from loot.status import Fault

# Longer SQL is read whatever it holds: a column named again and again needs no `(` (`a < b AND a < b ...`).
_SHORT_SQL = 256
# Functions whose cost does not grow with a value's size (or barely: a scan at memory speed, like `length`),
# and the bounded functions, which check the statement's clock before each call.
_CHEAP = frozenset({
    "abs", "changes", "coalesce", "ifnull", "iif", "if", "nullif", "likely", "unlikely", "likelihood",
    "last_insert_rowid", "random", "sign", "total_changes", "typeof", "subtype", "octet_length", "length",
    "unicode", "sqlite_version", "sqlite_source_id", "round", "min", "max",
    "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos", "cosh", "degrees",
    "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow", "power", "radians", "sin", "sinh",
    "sqrt", "tan", "tanh", "trunc",
    "date", "time", "datetime", "julianday", "unixepoch",
    "claim", "loot_privileged", "loot_policy_written",
    "instr", "replace", "like", "glob",
})
_CALLS = frozenset({"Function", "PureFunc"})


def may_be_costly(sql: str) -> bool:
    """Whether the statement may hold whole-value operations, so its program is worth reading."""
    return len(sql) > _SHORT_SQL or "(" in sql or "|" in sql or "->" in sql


def check(conn: apsw.Connection, sql: str, bindings: Any, limit: int, index: int) -> None:
    """Refuse the statement `sql` (the first in it) if its program holds more than `limit` whole-value
    operations. Errors preparing it are left to the run that follows, which reports them."""
    cursor = conn.cursor()
    try:
        count = _count(cursor, sql, bindings)
    except (apsw.Error, KeyError):
        return
    finally:
        cursor.close(force=True)
    if count > limit:
        raise Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_EXPENSIVE",
                    f"the statement makes or reads whole values {count} times in one program (functions such as "
                    f"printf, hex, upper, substr, ||, a column named again); at most {limit} are allowed, as SQLite "
                    "cannot stop one row's worth of them at the time limit: split it into several statements",
                    statement_index=index, limit=limit)


def _count(cursor: apsw.Cursor, sql: str, bindings: Any) -> int:
    statements = 0

    def first_only(*_: Any) -> bool:
        nonlocal statements
        statements += 1
        return statements == 1

    cursor.exec_trace = first_only
    count, last, loaded = 0, -1, set()
    try:
        for address, opcode, p1, p2, _p3, p4, *_ in cursor.execute(sql, bindings, explain=1):
            if address <= last:  # a trigger's program: the application's own SQL
                break
            last = address
            if opcode in _CALLS:
                count += _function_name(p4) not in _CHEAP
            elif opcode == "Concat":
                count += 1
            elif opcode == "Column":
                count += (p1, p2) in loaded
                loaded.add((p1, p2))
    except apsw.ExecTraceAbort:
        pass  # a second statement: the run itself refuses it
    return count


def _function_name(p4: str | None) -> str:
    """`printf(-1)` -> `printf`: EXPLAIN shows a call's function with its argument count."""
    name = p4 or ""
    return name[:name.rfind("(")] if "(" in name else name
