"""Request ids, structured logs and Prometheus metrics, shared by routers and shards."""
