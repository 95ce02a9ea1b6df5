"""Property tests: whatever arrives as a token, verify() answers with Claims or a Fault, never another exception;
and the claims of every token it accepts are what a shard can read (claim()'s flattening raises nothing)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from loot.status import Fault
from loot.tokens import Key, mint, verify
from loot.router.admission import shard_context
from loot.shard.access.claims import flatten
from tests.forge import claims, forge, header

KEY = Key.generate()
EDDSA_KEY = Key.generate("EdDSA")
TOKEN = mint(KEY, "app", "fuzz")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


# JSON text json.dumps would never write: numbers past a double or int64, nesting around every limit.
raw_numbers = st.sampled_from(["1e309", "-1e309", "1e-400", "-0", "1E+2", "9" * 400, "-" + "9" * 400, "9" * 4400,
                               "253402300799", "253402300800", "0.5", "-1"])
raw_nesting = st.builds(lambda depth, opener, inner: (opener * depth).replace("{", '{"a":') + inner +
                        "".join("}" if c == "{" else "]" for c in reversed(opener * depth)),
                        st.integers(0, 1100), st.sampled_from(["[", "{", "[{"]), raw_numbers | st.just("1"))
raw_keys = st.lists(st.sampled_from(["a", "a.b", "b", "", ".", "a.", "db.name", "user.id"]), min_size=1, max_size=4)


def answers_cleanly(token: str) -> None:
    try:
        accepted = verify(token)
    except Fault as fault:
        assert fault.reason and fault.message
    else:
        flatten(shard_context(accepted).claims_json)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(TOKEN) - 1), st.text(alphabet="AZaz09-_.=+/ \x00é", min_size=0, max_size=3), st.integers(0, 3))
def test_mutated_tokens(position: int, insert: str, cut: int) -> None:
    answers_cleanly(TOKEN[:position] + insert + TOKEN[position + cut:])


@settings(max_examples=120, deadline=None)
@given(st.dictionaries(st.sampled_from(["iss", "sub", "compat", "db", "exp", "nbf", "iat", "readonly", "schema", "x"]),
                       json_values, max_size=6), st.booleans())
def test_signed_arbitrary_claims(changes: dict, eddsa: bool) -> None:
    key = EDDSA_KEY if eddsa else KEY
    answers_cleanly(forge(header(key), claims(key, **changes), key))


@settings(max_examples=120, deadline=None)
@given(st.dictionaries(st.sampled_from(["alg", "typ", "jwk", "crit", "kid"]), json_values, max_size=4))
def test_arbitrary_headers(changes: dict) -> None:
    answers_cleanly(forge(header(KEY, **changes), claims(KEY), KEY))


@settings(max_examples=60, deadline=None)
@given(json_values)
def test_arbitrary_jwk_members(value) -> None:
    for member in ("kty", "crv", "x", "y", "alg", "use"):
        answers_cleanly(forge(header(KEY, jwk={**KEY.public_jwk, member: value}), claims(KEY), KEY))
    answers_cleanly(forge(json.dumps({"alg": "ES256", "jwk": value}).encode(), claims(KEY), KEY))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["exp", "nbf", "iat", "x", "db"]), raw_numbers | raw_nesting)
def test_raw_json_claims(claim: str, text: str) -> None:
    payload = json.dumps(claims(KEY, **{claim: "RAW"})).replace('"RAW"', text)
    answers_cleanly(forge(header(KEY), payload.encode(), KEY))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(raw_keys, json_values), max_size=4))
def test_dotted_and_nested_member_names(members: list) -> None:
    extra: dict = {}
    for path, value in members:
        node = extra
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[path[-1]] = value
    answers_cleanly(forge(header(KEY), claims(KEY, **extra), KEY))
