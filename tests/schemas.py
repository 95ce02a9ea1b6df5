"""Schema claims shared by the tests."""


def open_table(ddl: str, table: str) -> str:
    """`ddl` plus the filter and rule that let every token read and write `table` (tables are closed by default: docs/access.md)."""
    return (f"{ddl.rstrip().rstrip(';')}; INSERT INTO _filters VALUES ('{table}', 'all', 'true'); "
            f"INSERT INTO _rules VALUES ('{table}', 'write', 'all', 'true');")
