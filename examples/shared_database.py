"""Row-level security in one shared database, two ways.

    python examples/shared_database.py --router 127.0.0.1:7070

1. claim(): the token carries `user.id`; filters and rules compare rows to it.
2. _context: privileged `before`/`after` SQL fills a context table for the
   request, and predicates read it with a subquery. The user's id travels as a
   claim and the SQL reads it with claim(): never format a value into SQL text.
Either way each user sees and changes only their own rows in the shared table.
"""

from __future__ import annotations

import argparse

from loot import Client, Key
from loot.errors import RuleViolation

CLAIM_SCHEMA = """
CREATE TABLE notes (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, body TEXT);
INSERT INTO _filters VALUES ('notes', 'own_rows', 'owner = claim(''user.id'')');
INSERT INTO _rules VALUES ('notes', 'write', 'own_rows', 'owner = claim(''user.id'')');
"""

CONTEXT_SCHEMA = """
CREATE TABLE _context (user_id TEXT);
CREATE TABLE notes (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, body TEXT);
INSERT INTO _filters VALUES ('notes', 'own_rows', 'owner = (SELECT user_id FROM _context)');
INSERT INTO _rules VALUES ('notes', 'write', 'own_rows', 'owner = (SELECT user_id FROM _context)');
"""


def claim_pattern(client: Client, key: Key) -> None:
    def as_user(user: str):
        return client.database("board", tenant="claims", key=key, schema=CLAIM_SCHEMA, user={"id": user})

    alice, bob = as_user("alice"), as_user("bob")
    alice.execute("INSERT INTO notes (owner, body) VALUES (claim('user.id'), 'alice only')")
    bob.execute("INSERT INTO notes (owner, body) VALUES ('bob', 'bob only')")
    print("claim: alice sees", alice.execute("SELECT owner, body FROM notes").rows)
    print("claim: bob sees", bob.execute("SELECT owner, body FROM notes").rows)
    try:
        bob.execute("INSERT INTO notes (owner, body) VALUES ('alice', 'forged')")
    except RuleViolation as error:
        print(f"claim: bob cannot write as alice: rule {error.rule} on {error.table}")


def context_pattern(client: Client, key: Key) -> None:
    def as_user(user: str):
        # The app, not the user, writes the context: privileged SQL in the token. The SQL is the same
        # for every user; the id is a claim, read as a value, so no id can change what the SQL does.
        return client.database("board", tenant="context", key=key, schema=CONTEXT_SCHEMA, user={"id": user},
                               before="DELETE FROM _context; INSERT INTO _context VALUES (claim('user.id'))",
                               after="DELETE FROM _context")

    alice, bob, obrien = as_user("alice"), as_user("bob"), as_user("o'brien")
    alice.execute("INSERT INTO notes (owner, body) VALUES ('alice', 'hello from alice')")
    print("context: alice sees", alice.execute("SELECT owner, body FROM notes").rows)
    print("context: bob sees", bob.execute("SELECT owner, body FROM notes").rows)
    print("context: bob's update touched", bob.execute("UPDATE notes SET body = 'defaced'").rows_written, "rows")
    obrien.execute("INSERT INTO notes (owner, body) VALUES (claim('user.id'), 'a quote is data')")
    print("context: o'brien sees", obrien.execute("SELECT owner, body FROM notes").rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--router", default="127.0.0.1:7070")
    args = parser.parse_args()
    key = Key.generate()
    with Client(args.router) as client:
        claim_pattern(client, key)
        context_pattern(client, key)


if __name__ == "__main__":
    main()
