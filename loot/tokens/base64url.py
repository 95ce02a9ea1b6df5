"""Unpadded base64url (RFC 7515 §2), decoded strictly: one text per byte string."""

from __future__ import annotations

import base64
import binascii

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# To the standard alphabet; the standard-only characters and padding become invalid.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
# The bits the last character may not set, by length mod 4 (RFC 4648 §3.5: they must be zero).
_SPARE_BITS = {0: 0, 2: 0b1111, 3: 0b11}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Refuses other alphabets, padding, whitespace and non-zero trailing bits (ValueError)."""
    tail = len(text) % 4 if isinstance(text, str) else 1
    if tail == 1:
        raise ValueError("not unpadded base64url")
    try:
        data = binascii.a2b_base64(text.encode("ascii").translate(_TO_STANDARD) + b"=" * (-tail % 4), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("not unpadded base64url") from None
    if tail and _ALPHABET.index(text[-1]) & _SPARE_BITS[tail]:
        raise ValueError("not canonical base64url (non-zero trailing bits)")
    return data
