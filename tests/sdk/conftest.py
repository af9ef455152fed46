"""Starts the appliance's services with `paramant up` in a fresh data directory and hands the
tests its dev.json. The SDK keeps device keys under $HOME/.paramant, so HOME is private too."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import paramant_up  # noqa: E402  (tests/paramant_up.py, shared by the Python suites)


@pytest.fixture(scope="session")
def dev(tmp_path_factory):
    data = tmp_path_factory.mktemp("paramant-data")
    home = tmp_path_factory.mktemp("home")
    os.environ["HOME"] = str(home)
    proc, info = paramant_up.start(data)
    info["dev_json_mode"] = (data / "dev.json").stat().st_mode & 0o777
    yield info
    paramant_up.stop(proc)
