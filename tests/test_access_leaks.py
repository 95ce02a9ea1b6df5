"""Hostile tenants against filters, through a real cluster: a token holder's expressions never see a row
its filters hide, whatever the statement's shape, and errors never quote one (docs/access.md)."""

from __future__ import annotations

import grpc
import pytest

from tests.client import Client, rows
from loot.status import error_info
from loot.tokens import Key, mint

SECRET = "vault code 7319 in Oslo"
# docs/access.md's own policy, plus an index on body (the planner may run terms on its entries first) and a
# schema trigger, a schema view and a table read through a subquery filter.
SCHEMA = """
CREATE TABLE notes (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, body TEXT);
CREATE INDEX notes_body ON notes (body);
CREATE TABLE audit (what TEXT);
CREATE TRIGGER notes_audit AFTER UPDATE ON notes BEGIN INSERT INTO audit VALUES (NEW.body); END;
CREATE VIEW bodies AS SELECT id, body FROM notes;
INSERT INTO _filters VALUES ('notes', 'own', 'owner = claim(''user.id'')');
INSERT INTO _rules VALUES ('notes', 'write', 'own', 'owner = claim(''user.id'')');
INSERT INTO _filters VALUES ('audit', 'all', 'true');
INSERT INTO _rules VALUES ('audit', 'insert', 'all', 'true');
"""
# A function whose error quotes its argument: SQLite's "bad JSON path: '<the value>'".
def quote(value: str) -> str:
    return f"json_extract('{{}}', {value})"


def token(key: Key, user: str, **claims) -> str:
    return mint(key, "leaks", "t", schema=SCHEMA, user={"id": user}, **claims)


@pytest.fixture(scope="module")
def seeded(client: Client, key: Key) -> None:
    client.execute(token(key, "alice"), "INSERT INTO notes (id, owner, body) VALUES (1, 'alice', 'hers')")
    client.execute(token(key, "bob"), "INSERT INTO notes (id, owner, body) VALUES (2, 'bob', ?)", [SECRET])


def outcome(client: Client, sql: str, user_token: str) -> str:
    """Everything the caller learns from one statement: its rows, or its error's status, reason and message."""
    try:
        return repr(client.execute(user_token, sql).result)
    except grpc.RpcError as error:
        return f"{error.code()} {error.details()} {error_info(error)}"


def bobs_row(client: Client, key: Key) -> list[tuple]:
    return rows(client.execute(token(key, "bob"), "SELECT id, owner, body FROM notes").result)


ATTACKS = [
    # The shapes: an aliased target, an upsert's DO UPDATE, UPDATE ... FROM.
    f"DELETE FROM notes AS x WHERE x.owner <> claim('user.id') AND {quote('x.body')} IS NULL",
    f"INSERT INTO notes (id, owner) VALUES (2, 'alice') ON CONFLICT(id) DO UPDATE SET body = {quote('body')}",
    f"UPDATE notes SET body = body FROM (SELECT 1) WHERE notes.owner <> 'alice' AND {quote('notes.body')} IS NULL",
    # Terms the planner runs on entries of the body index before it reads the row's owner.
    f"SELECT id FROM notes WHERE body > 'v' AND {quote('body')} IS NULL",
    f"SELECT count(*) FROM notes WHERE body BETWEEN 'vault' AND 'vaulu' AND {quote('body')} IS NOT NULL",
    # Other shapes: no WHERE at all, an alias in UPDATE, subqueries, CTEs, a join, views, RETURNING.
    f"UPDATE notes AS n SET body = {quote('n.body')} WHERE n.id = 2",
    f"UPDATE notes AS n SET body = 'x' WHERE n.id > 1 AND {quote('n.body')} IS NULL RETURNING body",
    f"SELECT (SELECT count(*) FROM notes WHERE body > 'v' AND {quote('body')} IS NULL)",
    f"WITH c AS (SELECT body FROM notes WHERE body > 'v') SELECT * FROM c WHERE {quote('c.body')} IS NULL",
    f"SELECT * FROM (SELECT body FROM notes) WHERE body > 'v' AND {quote('body')} IS NULL",
    f"SELECT a.id FROM notes AS a JOIN notes AS b ON {quote('b.body')} IS NULL WHERE b.body > 'v'",
    f"SELECT id FROM bodies WHERE body > 'v' AND {quote('body')} IS NULL",
    f"DELETE FROM notes WHERE body > 'v' AND {quote('body')} IS NULL RETURNING body",
]


# A body on which the attacks' expressions do not fail (`$` is a valid JSON path): were they evaluated on bob's
# row, alice would see a difference.
HARMLESS = "$"


@pytest.mark.parametrize("attack", ATTACKS)
def test_hidden_rows_never_reach_the_callers_expressions(client: Client, key: Key, seeded: None, attack: str) -> None:
    alice, bob = token(key, "alice"), token(key, "bob")
    learned = {}
    for body in (HARMLESS, SECRET):
        client.execute(bob, "UPDATE notes SET body = ? WHERE id = 2", [body])
        learned[body] = outcome(client, attack, alice)
        assert bobs_row(client, key) == [(2, "bob", body)], "bob's row is untouched"
    assert SECRET not in learned[SECRET] and "7319" not in learned[SECRET]
    assert learned[SECRET] == learned[HARMLESS], "what alice learns does not depend on bob's row"


def test_a_readonly_token_reading_through_an_index(client: Client, key: Key, seeded: None) -> None:
    reader = token(key, "alice", readonly=True)
    learned = outcome(client, f"SELECT body FROM notes WHERE body > 'v' AND {quote('body')} IS NULL", reader)
    assert SECRET not in learned and "7319" not in learned


def test_an_error_quoting_the_callers_own_value_is_withheld(client: Client, key: Key, seeded: None) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        client.execute(token(key, "alice"), f"SELECT {quote('body')} FROM notes")
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "hers" not in failed.value.details() and "withheld" in failed.value.details()


def bit_probe(position: int, bit: int) -> str:
    """Fails with `integer overflow` exactly when bit `bit` of character `position` of bob's body is set
    (and never on alice's own rows)."""
    return (f"DELETE FROM notes AS x WHERE CASE WHEN x.id = 2 THEN abs(CASE WHEN (unicode(substr(x.body, {position}, 1))"
            f" >> {bit}) & 1 THEN -9223372036854775807 - 1 ELSE 0 END) < 0 END")


def test_abs_overflow_recovers_no_bit(client: Client, key: Key, seeded: None) -> None:
    alice = token(key, "alice")
    outcomes = {(position, bit): outcome(client, bit_probe(position, bit), alice)
                for position in range(1, len(SECRET) + 1) for bit in range(7)}
    recovered = "".join(chr(sum(1 << bit for bit in range(7) if "overflow" in outcomes[position, bit]))
                        for position in range(1, len(SECRET) + 1))
    assert recovered != SECRET
    assert len(set(outcomes.values())) == 1, "every probe looks the same: no bit depends on the hidden row"
    assert bobs_row(client, key) == [(2, "bob", SECRET)]
