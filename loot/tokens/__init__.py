"""Self-issued tokens (docs/tokens.md): keys, minting, verification."""

from loot.tokens.claims import Claims
from loot.tokens.keys import Key
from loot.tokens.mint import mint
from loot.tokens.verify import verify

__all__ = ["Claims", "Key", "mint", "verify"]
