"""The "database per signed-in user" recipe in a browser. This server signs users in (a stand-in
form) and mints each one a short-lived token for their own database with `provision`; the page
(index.html, app.js) then queries that database itself, over Connect on the router's HTTP port,
with plain `fetch`: the data never passes through this server. Beside `loot up`:

    python examples/browser/server.py --port 8000 --router-http http://127.0.0.1:7080

then open http://127.0.0.1:8000/. The router must allow this page's origin
(`--cors-origin http://127.0.0.1:8000`; `loot up` allows local origins).
"""

from __future__ import annotations

import argparse
import json
import secrets
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from loot import Key

HERE = Path(__file__).resolve().parent
PAGES = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript")}
# Each user's database starts from this template; the filter and rule open `todos` to its one user.
TEMPLATE = """
CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
INSERT INTO _filters VALUES ('todos', 'all', 'true');
INSERT INTO _rules VALUES ('todos', 'write', 'all', 'true');
"""
DATABASE = "browser-todos"
TOKEN_TTL = 600  # seconds; the page asks again a minute before it runs out
MAX_FORM = 4096


class App(BaseHTTPRequestHandler):
    key: Key
    router_http: str
    sessions: dict[str, str] = {}  # session id -> user name: your real sign-in goes here

    def do_GET(self) -> None:
        if self.path in PAGES:
            name, content_type = PAGES[self.path]
            return self.send(200, (HERE / name).read_bytes(), content_type)
        if self.path == "/api/db-token":
            return self.db_token()
        self.reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path == "/login":
            return self.login()
        if self.path == "/logout":
            self.sessions.pop(self.session() or "", None)
            return self.reply(200, {}, cookie="session=; Max-Age=0; Path=/")
        self.reply(404, {"error": "not found"})

    def login(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_FORM:
            return self.reply(413, {"error": "too long"})
        user = parse_qs(self.rfile.read(length).decode("utf-8", "replace")).get("user", [""])[0].strip()
        if not user:
            return self.reply(400, {"error": "say who you are"})
        session = secrets.token_urlsafe(16)
        self.sessions[session] = user
        self.reply(200, {"user": user}, cookie=f"session={session}; HttpOnly; SameSite=Strict; Path=/")

    def db_token(self) -> None:
        """The bridge: a signed-in user gets a token for their own database, nothing more."""
        user = self.sessions.get(self.session() or "")
        if user is None:
            return self.reply(401, {"error": "sign in first"})
        grant = self.key.provision(user, TEMPLATE, name=DATABASE, ttl=TOKEN_TTL)
        self.reply(200, {"user": user, "token": grant.token, "expires_at": grant.expires_at,
                         "endpoint": self.router_http, "database": f"{DATABASE} / {grant.database.tenant}"})

    def session(self) -> str | None:
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        return cookie["session"].value if "session" in cookie else None

    def reply(self, status: int, body: dict, cookie: str | None = None) -> None:
        self.send(status, json.dumps(body).encode(), "application/json", cookie)

    def send(self, status: int, data: bytes, content_type: str, cookie: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")  # tokens, and a page that changes with the session
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--router-http", default="http://127.0.0.1:7080",
                        help="the router's HTTP port, as the browser reaches it")
    parser.add_argument("--key", type=Path, default=Path("app-key.json"), help="the app's signing key (created if missing)")
    args = parser.parse_args()
    if not args.key.exists():
        Key.generate().save(args.key)
    App.key, App.router_http = Key.load(args.key), args.router_http.rstrip("/")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), App)
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
