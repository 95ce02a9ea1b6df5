"""Unit tests of token keys, minting and verification (docs/tokens.md), against published RFC vectors."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import grpc
import pytest
from jose import jws

from loot.cli.main import main as loot
from loot.sdk.tokens import MintedToken
from loot.status import Fault
from loot.tokens import Key, mint, verify
from loot.tokens.base64url import b64url, b64url_decode
from loot.tokens.ed25519 import Ed25519Key, is_valid_public_key
from loot.tokens.jwk import thumbprint
from loot.tokens.verify import MAX_TOKEN_BYTES
from loot.router.auth import bearer_token
from loot.shard.access.claims import flatten
from tests.forge import claims, forge, header, token_of_size
from tests.hostile_tokens import BAD_METADATA, CASES, Case, Keys

ALGS = ("ES256", "EdDSA")
# RFC 7638 §3.1.
RFC7638_JWK = {
    "kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjh"
         "Mstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvR"
         "L5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
}
# RFC 8037 appendix A.1 (key), A.3 (thumbprint), A.4 (signature).
RFC8037_JWK = {"kty": "OKP", "crv": "Ed25519", "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
               "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
RFC8037_JWS = ("eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
               "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg")


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(Key.generate("ES256"), Key.generate("EdDSA"), Key.generate("ES256"))


def refusal(token: str) -> Fault:
    with pytest.raises(Fault) as refused:
        verify(token)
    return refused.value


def test_rfc7638_thumbprint() -> None:
    assert thumbprint(RFC7638_JWK) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_rfc8037_thumbprint_and_account() -> None:
    assert thumbprint(RFC8037_JWK) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    assert Key.from_jwk(RFC8037_JWK).account == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_registered_ed25519_key_class_reproduces_rfc8037_signature() -> None:
    signing_input, _, signature = RFC8037_JWS.rpartition(".")
    assert b64url(Ed25519Key(RFC8037_JWK, "EdDSA").sign(signing_input.encode())) == signature
    public = {k: v for k, v in RFC8037_JWK.items() if k != "d"}
    assert jws.verify(RFC8037_JWS, public, algorithms=["EdDSA"]) == b"Example of Ed25519 signing"
    with pytest.raises(Exception):
        jws.verify(RFC8037_JWS[:-2] + "AA", public, algorithms=["EdDSA"])


@pytest.mark.parametrize("alg", ALGS)
def test_key_save_load_mint_verify(tmp_path: Path, alg: str) -> None:
    key = Key.generate(alg)
    path = tmp_path / "key.json"
    key.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = Key.load(path)
    assert (loaded.alg, loaded.account, loaded.public_jwk) == (alg, key.account, key.public_jwk)
    assert key.account == thumbprint(key.public_jwk)
    claims = verify(mint(loaded, "app", "ünï", readonly=True, user={"id": 7}))
    assert (claims.account, claims.name, claims.tenant) == (key.account, "app", "ünï")
    assert claims.flag("readonly") and claims.payload["user"] == {"id": 7}


def test_load_refuses_keys_that_cannot_sign(tmp_path: Path) -> None:
    public = tmp_path / "public.json"
    public.write_text(json.dumps(Key.generate().public_jwk))
    with pytest.raises(ValueError, match="not a private"):
        Key.load(public)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("[1]")
    with pytest.raises(ValueError):
        Key.load(garbage)
    with pytest.raises(ValueError, match="alg must be one of"):
        Key.generate("RS256")


@pytest.mark.parametrize("cert", [5, None, ["a.b.c"], {"cert": "a.b.c"}, "a.b.c"])
def test_load_refuses_an_app_key_file_whose_certificate_is_not_one(tmp_path: Path, cert) -> None:
    path = tmp_path / "app-key.json"
    path.write_text(json.dumps({**Key.generate().private_jwk(), "cert": cert}))
    with pytest.raises(ValueError, match=f"{path}: not a usable certificate"):
        Key.load(path)


def test_keygen_and_token_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ed.json"
    loot(["keygen", "--alg", "EdDSA", "--out", str(path)])
    assert "EdDSA account" in capsys.readouterr().out
    loot(["token", "--key", str(path), "--db", "app", "--tenant", "cli"])
    token = capsys.readouterr().out.strip()
    assert json.loads(b64url_decode(token.split(".")[0]))["alg"] == "EdDSA"
    assert verify(token).account == Key.load(path).account


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_hostile_token_is_refused(keys: Keys, case: Case) -> None:
    fault = refusal(case.token(keys))
    assert (fault.code.name, fault.reason) == (case.code, case.reason)
    assert len(fault.message) > 20


@pytest.mark.parametrize("alg", ALGS)
def test_boundaries_that_are_accepted(alg: str) -> None:
    key = Key.generate(alg)
    now = time.time()
    tenant = "é" * 128  # 256 UTF-8 bytes
    assert verify(mint(key, "n" * 256, tenant)).tenant == tenant
    assert verify(mint(key, "app", "t", ttl=1, now=now - 30), now=now).name == "app"  # expired 29 s ago: within skew
    assert verify(forge(header(key), claims(key, nbf=int(now) + 29), key), now=now).name == "app"
    assert verify(forge(header(key), claims(key, iat=int(now), exp=int(now) + 86_400 + 30), key), now=now).name == "app"
    assert verify(forge(header(key), claims(key, iat=None, exp=int(now) + 86_400), key), now=now).name == "app"
    assert verify(mint(key, "app", "t", ttl=7 * 86_400, now=now), now=now, max_lifetime=7 * 86_400).name == "app"
    assert verify(forge(header(key), claims(key, x=json.loads("[" * 30 + "]" * 30)), key)).payload["x"]
    assert verify(forge(header(key), claims(key, user={"id": 1}, **{"user.name": "ann", "x.y": 2}), key)).name == "app"
    assert verify(forge(header(key), claims(key, big=10**400, exp=int(now) + 600.5), key)).payload["big"] == 10**400
    assert verify(forge(header(key, typ="jwt", kid="k1"), claims(key, exp=now + 60.5), key)).expires_at == now + 60.5


def test_a_64_kib_token_is_accepted_and_one_byte_more_is_not() -> None:
    key = Key.generate()
    token = token_of_size(key, MAX_TOKEN_BYTES)
    assert MAX_TOKEN_BYTES - 3 <= len(token) <= MAX_TOKEN_BYTES
    assert verify(token).name == "app"
    assert refusal(token + "A" * (MAX_TOKEN_BYTES + 1 - len(token))).reason == "TOKEN_TOO_LARGE"
    assert refusal("x" * (1 << 20)).reason == "TOKEN_TOO_LARGE"


def test_expired_tokens_name_the_expiry(keys: Keys) -> None:
    token = mint(keys.es256, "app", "x", ttl=60)
    with pytest.raises(Fault) as refused:
        verify(token, now=time.time() + 60 + 31)
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED and refused.value.reason == "TOKEN_EXPIRED"
    assert "mint a new one" in refused.value.message and refused.value.metadata["exp"]


def test_ed25519_point_validation_matches_eulers_criterion() -> None:
    p = 2**255 - 19
    d = -121665 * pow(121666, -1, p) % p
    for _ in range(300):
        encoded = os.urandom(32)
        y = int.from_bytes(encoded, "little") & (2**255 - 1)
        if y >= p:
            continue
        u, v = y * y - 1, d * y * y + 1
        on_curve = pow(u * pow(v, -1, p) % p, (p - 1) // 2, p) == 1
        assert is_valid_public_key(encoded) == on_curve
    for _ in range(50):
        assert is_valid_public_key(b64url_decode(Key.generate("EdDSA").public_jwk["x"]))


@pytest.mark.parametrize("encoded", [
    "0100000000000000000000000000000000000000000000000000000000000000",  # identity
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
    "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  # order 8
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p: not canonical
    "11qY",  # not 32 bytes
])
def test_weak_or_malformed_ed25519_keys_are_refused(encoded: str) -> None:
    assert not is_valid_public_key(bytes.fromhex(encoded) if len(encoded) == 64 else encoded.encode())


@pytest.mark.parametrize("text", ["A", "QQ=", "QQ==", "A+B/", "AB C", "QR", "AAB", "é"])
def test_base64url_is_strict(text: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(text)


def test_base64url_round_trips() -> None:
    for size in range(70):
        data = os.urandom(size)
        assert b64url_decode(b64url(data)) == data


@pytest.mark.parametrize("metadata, reason", [case[1:] for case in BAD_METADATA], ids=[case[0] for case in BAD_METADATA])
def test_bearer_metadata_is_required(metadata, reason: str) -> None:
    with pytest.raises(Fault) as refused:
        verify(bearer_token(metadata))
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED and refused.value.reason == reason


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token((("x-other", "1"), ("authorization", "bearer  a.b.c "))) == "a.b.c"


def test_the_examples_in_docs_tokens_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (Path(__file__).parent.parent / "docs" / "tokens.md").read_text()
    monkeypatch.chdir(tmp_path)  # the examples save key files, which must not land in the repository
    examples = [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]
    assert examples
    for example in examples:
        exec(compile(example, "docs/tokens.md", "exec"), {})


@pytest.mark.parametrize("ttl", [None, 0, -900, 0.5, float("nan"), float("inf")])
def test_every_minted_token_expires(ttl) -> None:
    key = Key.generate()
    for make in (lambda: mint(key, "app", "t", ttl=ttl), lambda: key.token("app", "t", ttl=ttl),
                 lambda: MintedToken(key, "app", "t", ttl=ttl).current()):
        with pytest.raises(ValueError, match="ttl"):
            make()


@pytest.mark.parametrize("claims_json", ["[" * 100_000 + "]" * 100_000, "{not json"], ids=["deep", "not JSON"])
def test_a_shard_refuses_claims_no_router_would_send(claims_json: str) -> None:
    # Routers refuse such tokens; a shard still answers INVALID_ARGUMENT, not INTERNAL, if one arrives anyway.
    with pytest.raises(Fault) as refused:
        flatten(claims_json)
    assert (refused.value.code, refused.value.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "BAD_CLAIMS")
