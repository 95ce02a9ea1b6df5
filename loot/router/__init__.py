"""The router: stateless front door. Verifies tokens, picks the shard, forwards."""
