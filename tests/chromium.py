"""Headless Chromium for the tests that drive a real browser (the playground, examples/browser):
Debian's `chromium` with its `chromium-driver`, driven through Selenium's WebDriver binding.

They are installed with apt-get when missing (CI and a fresh machine run as root), so the README's
`pip install -e '.[test]' && pytest` passes on a fresh clone; where that cannot be done the tests fail
saying what to install, never skip. Selenium is given the driver's path, so it never looks for (or
downloads) a driver or a browser of its own.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = ("chromium", "chromium-driver")
INSTALL_TIMEOUT = 900
WAIT = 60  # seconds a page may take to show what a test waits for, on a loaded machine
# The machine may have no internet: without the background-networking flags Chromium's own
# connections (updates, sync, safe browsing) are refused and slow it down.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1000")


def installed() -> None:
    """Chromium and chromedriver, apt-get installed first if either is missing."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    with open(Path(tempfile.gettempdir()) / "loot-chromium-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run installing them: wait, then find them there
        if CHROMIUM.exists() and CHROMEDRIVER.exists():
            return
        apt = shutil.which("apt-get")
        assert apt and os.geteuid() == 0, (f"the browser tests need {CHROMIUM} and {CHROMEDRIVER}: install them "
                                           f"(`apt-get install -y {' '.join(PACKAGES)}` on Debian) and run again")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in ([apt, "update"], [apt, "install", "-y", *PACKAGES]):
            done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, env=env)
            assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), f"apt-get installed {PACKAGES} but not {CHROMIUM}"


@contextmanager
def browser(profile: Path, *, host_rules: str = "") -> Iterator[webdriver.Chrome]:
    """A headless Chromium with its own profile directory (a fresh localStorage). `host_rules` maps
    host names (`MAP name 127.0.0.1`), e.g. to reach a local server from an origin that is not secure."""
    installed()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if host_rules:
        options.add_argument(f"--host-resolver-rules={host_rules}")
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: webdriver.Chrome, condition, message: str):
    """What `condition(driver)` returns once it is truthy; fails with `message` and the page's text."""
    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(condition)
    except TimeoutException as error:
        text = driver.execute_script("return document.body ? document.body.innerText : ''")
        raise AssertionError(f"{message}; the page shows:\n{text[-3000:]}") from error
