"""bench/run.py end to end, shortened: every server starts, wrk drives it, the report is written."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_benchmark_runs_every_server_and_reports_the_targets(tmp_path):
    assert shutil.which("wrk"), "wrk is needed by the benchmark (apt-get install wrk)"
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- benchmark:start -->\nSTALE SECTION\n<!-- benchmark:end -->\n")
    command = [sys.executable, "bench/run.py", "--seconds", "1", "--out", str(tmp_path), "--readme", str(readme)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "results.json").read_text())
    names = [server["name"] for server in report["servers"]]
    assert names[:3] == ["tutorial way", "bare ceiling", "digitserve"]
    for server in report["servers"]:
        assert server["cold_start_s"] > 0 and server["rss_mb"] > 0
        for run in server["runs"]:
            # In one-second cells the tutorial way may not finish a request; the others must.
            if server["name"] != "tutorial way":
                assert run["requests"] > 0, f"{server['name']} answered nothing on {run['image']} at {run['clients']} clients"
            if server["name"].startswith("digitserve"):
                assert run["errors"] == 0, f"{server['name']} had errors on {run['image']} at {run['clients']} clients"
    assert set(report["preprocessing"]) == {"28x28 PNG", "280x280 PNG", "2000x2000 JPEG"}
    text = readme.read_text()
    assert "STALE SECTION" not in text and "| target | measured | met |" in text and "throughput vs tutorial way" in text
