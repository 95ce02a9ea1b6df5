"""A SQLAlchemy dialect for Loot (docs/dbapi.md#sqlalchemy): SQLAlchemy's own SQLite dialect over
loot.dbapi, so that Core and the ORM work on a Loot database.

    import loot.sqlalchemy  # registers the dialect (so does the installed entry point)
    engine = sqlalchemy.create_engine("loot://127.0.0.1:7070/app?tenant=alice&key=key.json&schema=schema.sql")

The schema comes from the token, not from DDL: `schema_claim(metadata)` turns a MetaData into the
schema claim's text, and `create_all` / `drop_all` are refused with an error that says so.
"""

from __future__ import annotations

import types
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.engine import URL
from sqlalchemy.schema import CreateIndex, CreateTable

from loot import dbapi

# What the dialect may assume of the shards' SQLite (RETURNING, many VALUES rows): the oldest Loot ships.
SQLITE_VERSION = (3, 45, 0)
_REFUSED_DDL = ("CREATE", "DROP", "ALTER")
_SCHEMA_FROM_TOKEN = ("a Loot database's schema comes from its token's schema claim, not from DDL: "
                      "pass loot.sqlalchemy.schema_claim(metadata) as the `schema` URL file or connect argument")


class LootDialect(SQLiteDialect):
    driver = "loot"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> types.ModuleType:
        module = types.ModuleType("loot.dbapi")  # loot.dbapi, with the SQLite version SQLAlchemy asks for
        module.__dict__.update(vars(dbapi))
        module.sqlite_version_info = SQLITE_VERSION
        return module

    def create_connect_args(self, url: URL) -> tuple[list[Any], dict[str, Any]]:
        return [url.render_as_string(hide_password=False)], {}

    def _get_server_version_info(self, connection) -> tuple[int, ...]:
        return SQLITE_VERSION

    def get_isolation_level(self, dbapi_connection) -> str:
        return "SERIALIZABLE"  # every Loot transaction is (BEGIN IMMEDIATE on its own database)

    def set_isolation_level(self, dbapi_connection, level: str) -> None:
        if level == "AUTOCOMMIT":
            dbapi_connection.autocommit = True

    def reset_isolation_level(self, dbapi_connection) -> None:
        dbapi_connection.autocommit = False

    def has_table(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> bool:
        raise dbapi.NotSupportedError(_SCHEMA_FROM_TOKEN)

    def do_execute(self, cursor, statement: str, parameters, context=None) -> None:
        if statement.lstrip().upper().startswith(_REFUSED_DDL):
            raise dbapi.NotSupportedError(_SCHEMA_FROM_TOKEN)
        cursor.execute(statement, parameters)


def schema_claim(metadata: MetaData, policy: str = "") -> str:
    """The schema claim for `metadata`'s tables and indexes, then `policy` (the `_filters` and `_rules`
    rows: tables are closed until they open them, docs/access.md)."""
    dialect = LootDialect()
    statements = []
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        statements += [str(CreateIndex(index).compile(dialect=dialect)).strip() for index in table.indexes]
    return ";\n".join(statements + ([policy.strip().rstrip(";")] if policy.strip() else [])) + ";"


registry.register("loot", "loot.sqlalchemy", "LootDialect")
