"""SIGTERM during load: every in-flight request gets its answer, then the process exits 0."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.test_page import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DIGIT = (Path(__file__).parent / "data" / "digit.png").read_bytes()


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="d.png"\r\nContent-Type: image/png\r\n\r\n').encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_sigterm_drains_in_flight_requests():
    port = free_port()
    env = {**os.environ, "DIGITSERVE_PORT": str(port), "DIGITSERVE_LOG_LEVEL": "warning"}
    service = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                probe.request("GET", "/readyz")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                assert service.poll() is None and time.monotonic() < deadline, "the service did not start"
                time.sleep(0.2)
        body, content_type = multipart(DIGIT)
        connections = []
        for _ in range(24):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request("POST", "/predict", body=body, headers={"Content-Type": content_type})
            connections.append(connection)
        time.sleep(0.2)  # every request is read and being worked on
        service.send_signal(signal.SIGTERM)
        statuses = [connection.getresponse().status for connection in connections]
        assert statuses == [200] * len(connections)
        assert service.wait(timeout=60) == 0
    finally:
        if service.poll() is None:
            service.kill()
