"""Runs `paramant up` for the Python suites (tests/sdk, tests/api, tests/browser): the binary
to run, start-up until DIR/dev.json exists, and a clean stop."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def paramant_binary() -> Path:
    """$PARAMANT_BIN, else the newest build in target/ (release first)."""
    explicit = os.environ.get("PARAMANT_BIN")
    if explicit:
        return Path(explicit)
    for profile in ("release", "debug"):
        candidate = REPO / "target" / profile / "paramant"
        if candidate.exists():
            return candidate
    raise RuntimeError("build it first: cargo build --bin paramant")


def start(data: Path, output=None, timeout: float = 120) -> tuple[subprocess.Popen, dict]:
    """Starts `paramant up --data DATA` and waits for dev.json; returns the process and
    dev.json's content. `output`: a file for both output streams, subprocess.DEVNULL for
    standard output only (the services' logs stay on standard error), None for neither."""
    to_file = output is not None and output != subprocess.DEVNULL
    proc = subprocess.Popen([str(paramant_binary()), "up", "--data", str(data)],
                            stdout=output, stderr=subprocess.STDOUT if to_file else None)
    dev_json = data / "dev.json"
    deadline = time.monotonic() + timeout
    while not dev_json.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"paramant up exited with {proc.returncode}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"paramant up did not write dev.json within {timeout:.0f} s")
        time.sleep(0.1)
    return proc, json.loads(dev_json.read_text())


def stop(proc: subprocess.Popen):
    """SIGTERM, and `paramant up` must exit 0 within a minute."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, "paramant up stops cleanly on SIGTERM"
