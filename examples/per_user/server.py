"""The "database per signed-in user" recipe: a web app hands each signed-in user
a short-lived token for their own database. Run it beside `loot up`:

    python examples/per_user/server.py --port 8000
    curl -c jar 'http://127.0.0.1:8000/login?user=alice'
    curl -b jar http://127.0.0.1:8000/api/db-token

The browser (or examples/per_user/client.py) then talks to the router directly
with that token; it can run plain SQL on its own database and nothing else.
"""

from __future__ import annotations

import argparse
import json
import secrets
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from loot import Key

# Every user's database starts from this template. Tables are closed by default
# (docs/access.md): the filter and rule rows open `todos` to the token holder.
TEMPLATE = """
CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
INSERT INTO _filters VALUES ('todos', 'all', 'true');
INSERT INTO _rules VALUES ('todos', 'write', 'all', 'true');
"""
SESSIONS: dict[str, str] = {}  # session id -> user: a stand-in for your real sign-in


class App(BaseHTTPRequestHandler):
    key: Key
    router: str

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/login":
            self.login(parse_qs(url.query).get("user", [""])[0])
        elif url.path == "/api/db-token":
            self.db_token()
        else:
            self.reply(404, {"error": "not found"})

    def login(self, user: str) -> None:
        if not user:
            return self.reply(400, {"error": "say ?user=NAME"})
        session = secrets.token_urlsafe(16)
        SESSIONS[session] = user
        self.reply(200, {"user": user}, cookie=f"session={session}; HttpOnly; SameSite=Strict; Path=/")

    def db_token(self) -> None:
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        user = SESSIONS.get(cookie["session"].value) if "session" in cookie else None
        if user is None:
            return self.reply(401, {"error": "sign in first"})
        grant = self.key.provision(user, TEMPLATE, name="todo-app", ttl=900)
        self.reply(200, {"token": grant.token, "expires_at": grant.expires_at, "router": self.router})

    def reply(self, status: int, body: dict, cookie: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--router", default="127.0.0.1:7070")
    parser.add_argument("--key", type=Path, default=Path("app-key.json"), help="the app's signing key (created if missing)")
    args = parser.parse_args()
    if not args.key.exists():
        Key.generate().save(args.key)
    App.key, App.router = Key.load(args.key), args.router
    server = ThreadingHTTPServer(("127.0.0.1", args.port), App)
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
