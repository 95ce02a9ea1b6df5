"""Loot: a database per tenant, reached over gRPC, authorised by self-issued JWTs."""

__version__ = "0.1.0"
