"""The OpenAPI 3.1 document the relay serves, checked against the running relay with
schemathesis: no 5xx and every response matching its schema. The run is bounded (a few examples
per operation, a global timeout) so CI stays fast."""
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path


def test_the_relay_serves_an_openapi_3_1_document(up):
    with urllib.request.urlopen(up.dev["relay_url"] + "/v2/openapi.json", timeout=10) as response:
        doc = json.load(response)
    assert doc["openapi"].startswith("3.1")
    for path in ("/v2/inbound", "/v2/outbound/{hash}", "/v2/sth", "/v2/ct/proof", "/v2/verify-receipt", "/checkpoint"):
        assert path in doc["paths"], path


def test_schemathesis_finds_no_server_error_and_no_schema_violation(up, tmp_path):
    schemathesis = Path(sys.executable).with_name("schemathesis")
    examples = os.environ.get("PARAMANT_SCHEMATHESIS_EXAMPLES", "8")
    result = subprocess.run(
        [
            str(schemathesis), "run", up.dev["relay_url"] + "/v2/openapi.json",
            "--checks", "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--max-examples", examples,
            "--phases", "examples,coverage,fuzzing",
            "--generation-deterministic",
            "--request-timeout", "10",
            "--header", "X-Api-Key: " + up.dev["api_key"],
            "--continue-on-failure",
            "--report", "junit", "--report-dir", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=300,
    )
    print(result.stdout[-20000:])
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
