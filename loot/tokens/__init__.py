"""Self-issued tokens (docs/tokens.md): keys, minting, verification."""

from loot.tokens.claims import Claims
from loot.tokens.keys import Key
from loot.tokens.mint import mint, mint_account
from loot.tokens.delegated_tokens import verify_token as verify  # with or without a certificate

__all__ = ["Claims", "Key", "mint", "mint_account", "verify"]
