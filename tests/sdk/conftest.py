"""Starts the appliance's services with `paramant up` in a fresh data directory and hands the
tests its dev.json. The SDK keeps device keys under $HOME/.paramant, so HOME is private too."""
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


@pytest.fixture(scope="session")
def dev(tmp_path_factory):
    data = tmp_path_factory.mktemp("paramant-data")
    home = tmp_path_factory.mktemp("home")
    os.environ["HOME"] = str(home)
    proc = subprocess.Popen([str(paramant_binary()), "up", "--data", str(data)])
    dev_json = data / "dev.json"
    deadline = time.monotonic() + 120
    while not dev_json.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"paramant up exited with {proc.returncode}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("paramant up did not write dev.json within 120 s")
        time.sleep(0.1)
    info = json.loads(dev_json.read_text())
    info["dev_json_mode"] = dev_json.stat().st_mode & 0o777
    yield info
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, "paramant up stops cleanly on SIGTERM"
