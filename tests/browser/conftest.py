"""Starts the appliance's services with `paramant up` in a fresh data directory, and a headless
Chromium (Debian's chromium + chromium-driver) driven through WebDriver."""
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import paramant_up  # noqa: E402  (tests/paramant_up.py, shared by the Python suites)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def dev(tmp_path_factory):
    data = tmp_path_factory.mktemp("paramant-data")
    proc, info = paramant_up.start(data, output=subprocess.DEVNULL)
    yield info
    paramant_up.stop(proc)


def new_browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}")
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


@pytest.fixture
def browser():
    driver = new_browser()
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def browser2():
    driver = new_browser()
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
