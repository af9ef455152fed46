"""Starts `paramant up` in a fresh data directory with its output (both services' logs) captured
to a file, hands the tests its dev.json, and stops it at the end of the session. HOME is
private because the SDK keeps device keys under $HOME/.paramant."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import paramant_up  # noqa: E402  (tests/paramant_up.py, shared by the Python suites)


class Up:
    def __init__(self, data: Path, log: Path, proc, dev: dict):
        self.data, self.log, self.proc, self.dev = data, log, proc, dev

    def stop(self) -> str:
        """SIGTERM, wait, and return everything both services wrote."""
        paramant_up.stop(self.proc)
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="session")
def up(tmp_path_factory):
    data = tmp_path_factory.mktemp("paramant-data")
    home = tmp_path_factory.mktemp("home")
    os.environ["HOME"] = str(home)
    log = tmp_path_factory.mktemp("logs") / "up.log"
    with open(log, "wb") as out:
        try:
            proc, dev = paramant_up.start(data, output=out)
        except RuntimeError as e:
            raise RuntimeError(f"{e}: {log.read_text()}") from None
    instance = Up(data, log, proc, dev)
    yield instance
    instance.stop()


def pytest_collection_modifyitems(items):
    """The log test stops the services to read their complete output: it runs last."""
    items.sort(key=lambda item: item.fspath.basename == "test_logs.py")
