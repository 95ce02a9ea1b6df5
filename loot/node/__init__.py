"""A shard that also serves the public API (docs/architecture.md, "Two paths"): the router's admission and
routing composed with the shard's own service, so that neither package imports the other."""
