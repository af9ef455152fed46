"""Starts `paramant up` in a fresh data directory with its output (both services' logs) captured
to a file, hands the tests its dev.json, and stops it at the end of the session. HOME is
private because the SDK keeps device keys under $HOME/.paramant."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def paramant_binary() -> Path:
    explicit = os.environ.get("PARAMANT_BIN")
    if explicit:
        return Path(explicit)
    for profile in ("release", "debug"):
        candidate = REPO / "target" / profile / "paramant"
        if candidate.exists():
            return candidate
    raise RuntimeError("build it first: cargo build --bin paramant")


class Up:
    def __init__(self, data: Path, log: Path, proc: subprocess.Popen, dev: dict):
        self.data, self.log, self.proc, self.dev = data, log, proc, dev

    def stop(self) -> str:
        """SIGTERM, wait, and return everything both services wrote."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=60) == 0, "paramant up stops cleanly on SIGTERM"
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="session")
def up(tmp_path_factory):
    data = tmp_path_factory.mktemp("paramant-data")
    home = tmp_path_factory.mktemp("home")
    os.environ["HOME"] = str(home)
    log = tmp_path_factory.mktemp("logs") / "up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(paramant_binary()), "up", "--data", str(data)], stdout=out, stderr=subprocess.STDOUT)
    dev_json = data / "dev.json"
    deadline = time.monotonic() + 120
    while not dev_json.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"paramant up exited with {proc.returncode}: {log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("paramant up did not write dev.json within 120 s")
        time.sleep(0.1)
    instance = Up(data, log, proc, json.loads(dev_json.read_text()))
    yield instance
    instance.stop()


def pytest_collection_modifyitems(items):
    """The log test stops the services to read their complete output: it runs last."""
    items.sort(key=lambda item: item.fspath.basename == "test_logs.py")
