"""A database's schema as SQLite itself reports it (PRAGMAs), never as SQL text.

SQLite rewrites a table's stored SQL on ADD COLUMN, so tables are compared
through PRAGMA table_xinfo, index_list/index_xinfo, foreign_key_list and
column metadata. The few facts no PRAGMA reports (CHECK expressions, generated
column expressions, view and trigger bodies, partial and expression indexes)
are compared as normalized tokens, where case, quoting, whitespace and
comments do not count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import apsw

from loot.shard import system_tables
from loot.shard.schema.claim_text import Part, after_name, fold, normalized, table_parts, tokens

DERIVED = ("index", "view", "trigger")


@dataclass(frozen=True)
class Entry:
    """One object of `main.sqlite_schema`."""

    type: str
    name: str
    table: str
    sql: str

    @property
    def key(self) -> str:
        return fold(self.name)


@dataclass(frozen=True)
class Column:
    name: str = field(compare=False)
    type: str
    notnull: bool
    default: tuple[str, ...] | None
    pk: int
    hidden: int
    collation: str
    autoincrement: bool
    checks: tuple[tuple[str, ...], ...]
    generated: tuple[tuple[str, ...], ...]
    definition: str = field(compare=False)

    def differences(self, other: Column) -> list[str]:
        """What about `other` (the claim's column) differs from this one (the live column)."""
        said = {"type": (self.type, other.type), "NOT NULL": (self.notnull, other.notnull),
                "default": (self.default, other.default), "primary key": (self.pk, other.pk),
                "generated kind": (self.hidden, other.hidden), "collation": (self.collation, other.collation),
                "AUTOINCREMENT": (self.autoincrement, other.autoincrement), "CHECK": (self.checks, other.checks),
                "generated expression": (self.generated, other.generated)}
        return [what for what, (live, claimed) in said.items() if live != claimed]


@dataclass(frozen=True)
class Table:
    name: str
    kind: str
    without_rowid: bool
    strict: bool
    module: tuple[str, ...]
    columns: dict[str, Column]
    foreign_keys: frozenset[tuple]
    keys: frozenset[tuple]
    checks: tuple[tuple[str, ...], ...]

    def constraints_over(self, columns: set[str]) -> tuple[frozenset[tuple], frozenset[tuple]]:
        """Foreign keys and unique keys that involve only `columns` (the others belong to kept columns)."""
        return (frozenset(fk for fk in self.foreign_keys if set(fk[1]) <= columns),
                frozenset(key for key in self.keys if {name for name, _, _ in key[2]} <= columns))


class Catalog:
    """The user-visible schema of `main`: tables, derived objects, filter and rule rows."""

    def __init__(self, conn: apsw.Connection):
        self.conn = conn
        kinds = {fold(name): (kind, bool(wr), bool(strict)) for name, kind, wr, strict in
                 conn.execute("SELECT name, type, wr, strict FROM pragma_table_list WHERE schema = 'main'")}
        self.table_kinds = kinds
        self.tables: dict[str, Entry] = {}
        self.derived: dict[tuple[str, str], Entry] = {}
        self._read: dict[str, Table] = {}
        self._signatures: dict[Entry, tuple] = {}
        for row in conn.execute("SELECT type, name, tbl_name, sql FROM main.sqlite_schema ORDER BY rowid"):
            entry = Entry(*row)
            if _is_internal(entry) or entry.sql is None:
                continue
            if entry.type == "table" and kinds.get(entry.key, ("",))[0] in ("table", "virtual"):
                self.tables[entry.key] = entry
            elif entry.type in DERIVED:
                self.derived[(entry.type, entry.key)] = entry

    def table(self, key: str) -> Table:
        if key not in self._read:
            self._read[key] = self._table(key)
        return self._read[key]

    def signature(self, entry: Entry) -> tuple:
        """What makes a derived object what it is; equal signatures need no change."""
        if entry not in self._signatures:
            self._signatures[entry] = self._signature(entry)
        return self._signatures[entry]

    def _table(self, key: str) -> Table:
        entry = self.tables[key]
        kind, without_rowid, strict = self.table_kinds[key]
        if kind == "virtual":
            return Table(entry.name, kind, False, False, normalized(after_name(tokens(entry.sql))), {},
                         frozenset(), frozenset(), ())
        parts = table_parts(entry.sql)
        return Table(entry.name, kind, without_rowid, strict, (), self._columns(entry.name, parts),
                     self._foreign_keys(entry.name), self._keys(entry.name),
                     tuple(sorted(g for part in parts if part.is_constraint for g in part.groups_after("check"))))

    def _signature(self, entry: Entry) -> tuple:
        body = after_name(tokens(entry.sql))
        if entry.type != "index":
            return fold(entry.table), normalized(body)
        unique, partial = self.conn.execute(
            "SELECT \"unique\", partial FROM pragma_index_list(?, 'main') WHERE name = ?", (entry.table, entry.name)).fetchone()
        columns = self._index_columns(entry.name)
        by_expression = partial or any(name is None for name, _, _ in columns)
        return fold(entry.table), unique, columns, normalized(body) if by_expression else ()

    def rows(self, table: str) -> tuple[list[str], list[tuple]]:
        """A system table's column names and its rows, in a stable order."""
        columns = [name for (name,) in self.conn.execute("SELECT name FROM pragma_table_info(?, 'main')", (table,))]
        return columns, sorted(self.conn.execute(f'SELECT * FROM main."{table}"'), key=repr)

    def _columns(self, table: str, parts: list[Part]) -> dict[str, Column]:
        definitions = {part.tokens[0].norm: part for part in parts if not part.is_constraint}
        columns = {}
        for name, type_, notnull, default, pk, hidden in self.conn.execute(
                "SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?, 'main')", (table,)):
            _, collation, _, _, autoincrement = self.conn.column_metadata("main", table, name)
            part = definitions.get(fold(name))
            columns[fold(name)] = Column(
                name, " ".join(normalized(tokens(type_ or ""))), bool(notnull),
                None if default is None else normalized(tokens(default)), pk, hidden, fold(collation or "binary"),
                bool(autoincrement), tuple(sorted(part.groups_after("check"))) if part else (),
                tuple(part.groups_after("as")) if part else (), part.text if part else "")
        return columns

    def _foreign_keys(self, table: str) -> frozenset[tuple]:
        keys: dict[int, list] = {}
        for id_, target, source, to, on_update, on_delete, match in self.conn.execute(
                "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete, match "
                "FROM pragma_foreign_key_list(?, 'main') ORDER BY id, seq", (table,)):
            key = keys.setdefault(id_, [fold(target), [], [], on_update, on_delete, match])
            key[1].append(fold(source))
            key[2].append(fold(to) if to else None)
        return frozenset((t, tuple(s), tuple(d), u, de, m) for t, s, d, u, de, m in keys.values())

    def _keys(self, table: str) -> frozenset[tuple]:
        return frozenset((origin, partial, self._index_columns(name)) for name, origin, partial in self.conn.execute(
            "SELECT name, origin, partial FROM pragma_index_list(?, 'main') WHERE origin != 'c'", (table,)))

    def _index_columns(self, index: str) -> tuple[tuple[str | None, int, str], ...]:
        return tuple((fold(name) if name is not None else None, desc, fold(collation)) for name, desc, collation in
                     self.conn.execute("SELECT name, \"desc\", coll FROM pragma_index_xinfo(?, 'main') WHERE key ORDER BY seqno",
                                       (index,)))


def _is_internal(entry: Entry) -> bool:
    return system_tables.is_system_table(entry.name) or system_tables.is_system_table(entry.table)
