"""What the browser does: sign in, fetch a database token, use it directly.

    python examples/per_user/client.py --app http://127.0.0.1:8000 --user alice
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from http.cookiejar import CookieJar

from loot import Client
from loot.errors import PermissionDenied


def fetch_token(app: str, user: str) -> dict:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    opener.open(f"{app}/login?user={user}").read()
    return json.load(opener.open(f"{app}/api/db-token"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--app", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="alice")
    args = parser.parse_args()
    grant = fetch_token(args.app, args.user)
    with Client(grant["router"]) as client:
        db = client.open(grant["token"])
        db.execute("INSERT INTO todos (title) VALUES (?)", [f"{args.user}'s first todo"])
        for todo in db.execute("SELECT id, title, done FROM todos ORDER BY id").dicts():
            print(todo)
        try:
            db.execute("DROP TABLE todos")
        except PermissionDenied as error:
            print(f"as expected, no DDL: {error.reason}")


if __name__ == "__main__":
    main()
