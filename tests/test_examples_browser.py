"""examples/browser in a real headless Chromium: two users sign in to the example's server, and the page
queries each one's own database directly on the router's HTTP port, across origins (CORS)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from loot.cli.local_cluster import LocalCluster
from tests.chromium import browser, wait_for
from tests.conftest import start_cluster

pytestmark = pytest.mark.cluster
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "browser" / "server.py"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LocalCluster]]:
    """The example's server, and a cluster whose router (on loopback) allows loopback pages by default."""
    cluster = start_cluster(tmp_path_factory.mktemp("cluster"), http_port=0)
    server = subprocess.Popen([sys.executable, str(EXAMPLE), "--port", "0", "--router-http", cluster.http,
                               "--key", str(tmp_path_factory.mktemp("app") / "key.json")],
                              stdout=subprocess.PIPE, text=True)
    try:
        origin = server.stdout.readline().split()[-1]
        assert origin.startswith("http://127.0.0.1:"), "the example's server did not start"
        yield origin, cluster
    finally:
        server.terminate()
        server.wait(10)
        cluster.stop()


def sign_in(driver, origin: str, name: str) -> None:
    driver.get(origin)
    form = wait_for(driver, lambda d: d.find_element(By.ID, "login").is_displayed() and d.find_element(By.ID, "login"),
                    "no sign-in form")
    form.find_element(By.NAME, "user").send_keys(name)
    form.find_element(By.TAG_NAME, "button").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "who").text == name, f"{name} is not signed in")
    assert not form.is_displayed(), "the sign-in form goes once signed in"


def todos(driver) -> list[str]:
    wait_for(driver, lambda d: d.execute_script("return document.body.dataset.todos !== undefined "
                                                "&& document.body.dataset.todos !== ''"), "no list drawn")
    return [item.text.strip() for item in driver.find_elements(By.CSS_SELECTOR, "#todos li")]


def add(driver, title: str) -> None:
    before = len(todos(driver))
    field = driver.find_element(By.CSS_SELECTOR, "#add input")
    field.send_keys(title)
    driver.find_element(By.CSS_SELECTOR, "#add button").click()
    wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#todos li")) == before + 1
             or d.find_element(By.ID, "error").text, f"{title!r} was not added")
    assert driver.find_element(By.ID, "error").text == ""


def sign_out(driver) -> None:
    driver.find_element(By.ID, "logout").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "login").is_displayed(), "still signed in")


def test_each_user_sees_only_their_own_rows(app, tmp_path: Path) -> None:
    origin, cluster = app
    with browser(tmp_path / "profile") as driver:
        sign_in(driver, origin, "alice")
        assert todos(driver) == []
        add(driver, "alice's todo")
        assert todos(driver) == ["alice's todo"]
        sign_out(driver)

        sign_in(driver, origin, "bob")
        assert todos(driver) == [], "bob has a database of his own"
        add(driver, "bob's todo")
        assert todos(driver) == ["bob's todo"]
        sign_out(driver)

        sign_in(driver, origin, "alice")
        assert todos(driver) == ["alice's todo"]
        requests = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert any(name.startswith(f"{cluster.http}/loot.v1.Database/Execute") for name in requests), \
        "the page queries the router's HTTP port itself"
