"""The playground at `/` of a router's HTTP port, in a real headless Chromium (tests/chromium.py): keys made
and tokens signed in the page, SQL run over Connect, filters at work between two users, errors shown with
their reason, and the message a page without WebCrypto gives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from loot.cli.local_cluster import LocalCluster
from tests.chromium import browser, wait_for
from tests.conftest import start_cluster

pytestmark = pytest.mark.cluster
INSECURE_HOST = "insecure.test"  # resolved to 127.0.0.1 by the browser alone: an origin that is not secure


@pytest.fixture(scope="module")
def http_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("cluster"), http_port=0)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def page(http_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory):
    """One browser for the module; each test starts from the playground freshly loaded."""
    with browser(tmp_path_factory.mktemp("profile"), host_rules=f"MAP {INSECURE_HOST} 127.0.0.1") as driver:
        yield driver


def load(driver, url: str) -> None:
    """The playground with its form as first shown (the key stays, in localStorage)."""
    driver.get(url)
    driver.execute_script("localStorage.removeItem('loot.playground.form')")
    driver.get(url)
    wait_for(driver, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"),
             "the playground did not load its key")


def user(driver, number: int):
    driver.find_element(By.ID, f"tab-user-{number}").click()
    return driver.find_element(By.ID, f"user-{number}")


def fill(element, text: str) -> None:
    element.clear()
    if text:
        element.send_keys(text)


def run(driver, panel, sql: str, params: str = "", button: str = "run"):
    """Runs `sql` in a user's panel and returns its output once it shows a result or an error."""
    fill(panel.find_element(By.CSS_SELECTOR, ".sql"), sql)
    fill(panel.find_element(By.CSS_SELECTOR, ".params"), params)
    output = panel.find_element(By.CSS_SELECTOR, ".output")
    driver.execute_script("arguments[0].replaceChildren()", output)
    panel.find_element(By.CSS_SELECTOR, f".{button}").click()
    wait_for(driver, lambda d: output.find_elements(By.CSS_SELECTOR, ".counts, .error"), f"no answer to {sql}")
    return output


def rows(output) -> list[list[str]]:
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            for row in output.find_elements(By.CSS_SELECTOR, "table.result tbody tr")]


def error(output) -> str:
    found = output.find_elements(By.CSS_SELECTOR, ".error")
    assert found, f"expected an error, got: {output.text}"
    return found[0].text


def test_a_key_a_schema_rows_and_a_second_user(page, http_cluster) -> None:
    load(page, http_cluster.http)
    page.find_element(By.ID, "new-es256").click()
    wait_for(page, lambda d: "(ES256)" in d.find_element(By.ID, "alg").text, "no ES256 key")
    alice = user(page, 1)
    fill(alice.find_element(By.CSS_SELECTOR, ".claims"), '{"user": {"id": "alice"}}')
    out = run(page, alice, "INSERT INTO notes (owner, body) VALUES (claim('user.id'), ?)", '["hello from alice"]')
    assert "Schema changes" in out.text, "the first request applies the seed schema and says so"
    assert "1 written" in out.text, out.text
    out = run(page, alice, "SELECT owner, body FROM notes")
    assert rows(out) == [["alice", "hello from alice"]]
    assert "Schema changes" not in out.text, "the schema is unchanged since"

    bob = user(page, 2)
    fill(bob.find_element(By.CSS_SELECTOR, ".claims"), '{"user": {"id": "bob"}}')
    assert rows(run(page, bob, "SELECT owner, body FROM notes")) == [], "the filter hides alice's row from bob"
    run(page, bob, "INSERT INTO notes (owner, body) VALUES (claim('user.id'), :body)", '{"body": "bob here"}')
    assert rows(run(page, bob, "SELECT owner, body FROM notes")) == [["bob", "bob here"]]
    assert rows(run(page, user(page, 1), "SELECT owner, body FROM notes")) == [["alice", "hello from alice"]]


def test_describe_shows_tables_filters_and_rules(page, http_cluster) -> None:
    load(page, http_cluster.http)
    out = run(page, user(page, 1), "", button="describe")
    text = out.text
    assert "table notes" in text and "owner = claim('user.id')" in text and "write" in text, text


def test_errors_show_their_reason(page, http_cluster) -> None:
    load(page, http_cluster.http)
    alice = user(page, 1)
    assert "SQL_ERROR" in (shown := error(run(page, alice, "SELEC 1"))) and "syntax error" in shown, shown
    shown = error(run(page, alice, "INSERT INTO notes (owner, body) VALUES ('bob', 'forged')"))
    assert "permission_denied" in shown and "RULE_VIOLATED" in shown and "rule = own" in shown, shown
    token = alice.find_element(By.CSS_SELECTOR, ".token")
    fill(token, "not-a-token")
    shown = error(run(page, alice, "SELECT 1"))
    assert "unauthenticated" in shown and "MALFORMED_TOKEN" in shown and "three base64url segments" in shown, shown
    fill(token, "")
    fill(alice.find_element(By.CSS_SELECTOR, ".claims"), '{"user": {"id": "alice"}, "exp": 1}')
    shown = error(run(page, alice, "SELECT 1"))
    assert "TOKEN_EXPIRED" in shown, "claims typed in the page override the ones it sets"
    assert "Not sent" in error(run(page, alice, "SELECT ?", "[1,")), "bad JSON is caught before any request"


def test_another_key_sees_none_of_the_rows(page, http_cluster) -> None:
    load(page, http_cluster.http)
    first = page.find_element(By.ID, "account").text
    page.execute_script("localStorage.setItem('loot.playground.key', '{\"alg\": \"RS256\"}')")
    load(page, http_cluster.http)
    second = page.find_element(By.ID, "account").text
    assert second not in ("", first, "none yet"), "a stored key the page cannot read is replaced by a new one"
    page.find_element(By.ID, "new-eddsa").click()  # Debian's Chromium signs Ed25519 too
    wait_for(page, lambda d: "(EdDSA)" in d.find_element(By.ID, "alg").text, "no EdDSA key")
    assert page.find_element(By.ID, "account").text not in (first, second)
    out = run(page, user(page, 1), "SELECT owner, body FROM notes")
    assert "Schema changes" in out.text, "a new account, so a new database"
    assert rows(out) == []


def test_without_webcrypto_the_page_says_why(page, http_cluster) -> None:
    port = http_cluster.http.rsplit(":", 1)[1].rstrip("/")
    page.get(f"http://{INSECURE_HOST}:{port}/")
    notice = wait_for(page, lambda d: d.find_element(By.ID, "insecure").is_displayed()
                      and d.find_element(By.ID, "insecure"), "no notice on a page without crypto.subtle")
    assert page.execute_script("return window.isSecureContext") is False
    assert "secure context" in notice.text and "127.0.0.1" in notice.text and "HTTPS" in notice.text
    assert not page.find_element(By.ID, "playground").is_displayed()
