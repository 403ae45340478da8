"""SIGTERM during load: every in-flight request gets its answer, then the process exits 0."""

from __future__ import annotations

import http.client
import signal
import time
from urllib.parse import urlsplit

import pytest

from tests.conftest import TEST_DATA, multipart_body, start_service

pytestmark = pytest.mark.slow

DIGIT = (TEST_DATA / "digit.png").read_bytes()


def test_sigterm_drains_in_flight_requests():
    service, url = start_service()
    address = urlsplit(url)
    try:
        body, content_type = multipart_body([("file", "d.png", DIGIT, "image/png")])
        connections = []
        for _ in range(24):
            connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
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
