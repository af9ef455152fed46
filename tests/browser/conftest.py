"""Starts the appliance's services with `paramant up` in a fresh data directory, and a headless
Chromium (Debian's chromium + chromium-driver) driven through WebDriver."""
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

REPO = Path(__file__).resolve().parents[2]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def paramant_binary() -> Path:
    explicit = os.environ.get("PARAMANT_BIN")
    if explicit:
        return Path(explicit)
    for profile in ("release", "debug"):
        candidate = REPO / "target" / profile / "paramant"
        if candidate.exists():
            return candidate
    raise RuntimeError("build it first: cargo build --bin paramant")


@pytest.fixture(scope="session")
def dev(tmp_path_factory):
    data = tmp_path_factory.mktemp("paramant-data")
    proc = subprocess.Popen([str(paramant_binary()), "up", "--data", str(data)], stdout=subprocess.DEVNULL)
    dev_json = data / "dev.json"
    deadline = time.monotonic() + 120
    while not dev_json.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"paramant up exited with {proc.returncode}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("paramant up did not write dev.json within 120 s")
        time.sleep(0.1)
    yield json.loads(dev_json.read_text())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, "paramant up stops cleanly on SIGTERM"


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
