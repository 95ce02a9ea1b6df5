"""The playground's picture in docs/playground.md, taken with the browser tests' own tooling:

    python -m tests.screenshot_playground docs/images/playground.png

Starts a local cluster with an HTTP port, runs a few statements in the page as the tests do, and saves
a PNG of the whole page.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from selenium.webdriver.common.by import By

from tests.chromium import browser
from tests.conftest import start_cluster
from tests.test_playground import fill, load, run, user


def main(target: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        cluster = start_cluster(Path(scratch) / "cluster", http_port=0)
        try:
            with browser(Path(scratch) / "profile") as driver:
                load(driver, cluster.http)
                alice = user(driver, 1)
                for body in ("buy milk", "call the plumber"):
                    run(driver, alice, "INSERT INTO notes (owner, body) VALUES (claim('user.id'), ?)", f'["{body}"]')
                run(driver, alice, "SELECT id, owner, body FROM notes WHERE body LIKE ?", '["%"]')
                height = driver.execute_script("return document.documentElement.scrollHeight")
                driver.set_window_size(1280, height + 80)  # the whole page, with no scroll bar
                driver.execute_script("window.scrollTo(0, 0)")
                driver.save_screenshot(str(target))
        finally:
            cluster.stop()
    print(f"wrote {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images/playground.png"))
