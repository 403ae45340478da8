"""A short run of the load test (bench/load_test.py): no unexpected answer, RSS steady, clean exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_short_load_run():
    result = subprocess.run(
        [sys.executable, "bench/load_test.py", "--seconds", "10", "--users", "16"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert "load test passed" in result.stdout
