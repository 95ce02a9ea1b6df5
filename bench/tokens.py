"""Token verification cost per call, against the bare signature check measured in the same run.

    python bench/tokens.py

Rows: the bare `cryptography` verify of the token's signature (the baseline: key
already loaded, signature already decoded); the same plus loading the key from
its JWK bytes (the floor for a never-seen key); uncached `verify()` with the signer's
key already seen (the usual case: one application key signs many tokens);
uncached `verify()` of a key never seen before; python-jose's own
`jws.verify` for comparison; and the router's cache hit.
Targets (issue 3): uncached <= 1.5x the bare check, cached <= 10 us.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature  # noqa: E402
from jose import jws  # noqa: E402

from loot.tokens import Key, mint, verify  # noqa: E402
from loot.tokens.base64url import b64url_decode  # noqa: E402
from loot.tokens.cache import VerifiedTokens  # noqa: E402
from loot.tokens.verify import signer  # noqa: E402

SCHEMA = "CREATE TABLE notes (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, body TEXT);"


def per_call_us(functions: dict[str, tuple[object, int]], rounds: int = 30) -> dict[str, float]:
    """Best per-call time of each function; rounds interleave them so machine load hits all alike."""
    best = {name: float("inf") for name in functions}
    for _ in range(rounds):
        for name, (function, number) in functions.items():
            best[name] = min(best[name], timeit.timeit(function, number=number) / number * 1e6)
    return best


def bare_check(key: Key, token: str):
    """The signature check alone, as `cryptography` does it, on the exact signed bytes."""
    header, payload, signature = token.split(".")
    signed, raw = f"{header}.{payload}".encode(), b64url_decode(signature)
    public = key.jose_key.public_key()
    if key.alg == "ES256":
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        p256: ec.EllipticCurvePublicKey = public.prepared_key
        return lambda: p256.verify(der, signed, ec.ECDSA(hashes.SHA256()))
    edwards = ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(key.public_jwk["x"]))
    return lambda: edwards.verify(raw, signed)


def bare_check_with_key_load(key: Key, token: str):
    """The bare check plus building the key object from its JWK bytes, as any verifier of a new key must."""
    header, payload, signature = token.split(".")
    signed, raw = f"{header}.{payload}".encode(), b64url_decode(signature)
    if key.alg == "ES256":
        point = b"\x04" + b64url_decode(key.public_jwk["x"]) + b64url_decode(key.public_jwk["y"])
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        return lambda: ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point).verify(
            der, signed, ec.ECDSA(hashes.SHA256()))
    x = b64url_decode(key.public_jwk["x"])
    return lambda: ed25519.Ed25519PublicKey.from_public_bytes(x).verify(raw, signed)


def uncached_new_key(key: Key, token: str):
    def run() -> None:
        signer.cache_clear()
        verify(token)
    return run


def report(alg: str) -> dict[str, float]:
    key = Key.generate(alg)
    token = mint(key, "app", "alice", schema=SCHEMA, user={"id": "u-42", "role": "member"})
    verify(token)
    cache = VerifiedTokens()
    cache.verify(token)
    figures = per_call_us({
        "bare signature check": (bare_check(key, token), 200),
        "bare check + key load": (bare_check_with_key_load(key, token), 200),
        "verify(), key seen before": (lambda: verify(token), 200),
        "verify(), new key": (uncached_new_key(key, token), 200),
        "python-jose jws.verify": (lambda: jws.verify(token, key.public_jwk, algorithms=[alg]), 200),
        "cached (VerifiedTokens hit)": (lambda: cache.verify(token), 10_000),
    })
    base = figures["bare signature check"]
    print(f"\n{alg} ({len(token)}-byte token)")
    for name, us in figures.items():
        print(f"  {name:30} {us:8.2f} us  {us / base:5.2f}x bare")
    return figures


if __name__ == "__main__":
    for alg in ("ES256", "EdDSA"):
        report(alg)
