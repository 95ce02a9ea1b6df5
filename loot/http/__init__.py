"""The public API over HTTP: Connect (JSON and binary) and gRPC-Web, with CORS and the static page at `/`.

Any process that serves `loot.v1.Database` over gRPC can serve it here too: it hands over the very
method handlers it registered on its gRPC server (observed, guarded), and each HTTP call runs them with
a context that stands in for gRPC's (docs/http.md).
"""
