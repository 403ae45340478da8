"""Oversize uploads against a real uvicorn server (conftest's `server_address`): the client gets to read the 413 and its sentence."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest

from app import uploads
from tests.conftest import multipart_body
from tests.messages import TOO_BIG

MB = 1024 * 1024
# A phone photo, well over the 5 MB limit and larger than the socket buffers on both ends.
PHOTO_BYTES = 8 * MB
CHUNK_BYTES = 64 * 1024


def photo_form() -> tuple[bytes, str]:
    """A multipart body holding one PHOTO_BYTES file, as the page sends a photo, and its Content-Type."""
    return multipart_body([("file", "photo.jpg", b"\xff\xd8" + b"\x00" * PHOTO_BYTES, "image/jpeg")])


def post(address: tuple[str, int], body: bytes, content_type: str, chunked: bool) -> tuple[int, dict, dict]:
    """POST the body to /predict, sent in full before reading the answer, as most HTTP clients do."""
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        if chunked:
            chunks = (body[start : start + CHUNK_BYTES] for start in range(0, len(body), CHUNK_BYTES))
            connection.request("POST", "/predict", body=chunks, headers={"Content-Type": content_type}, encode_chunked=True)
        else:
            connection.request("POST", "/predict", body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversize_upload_is_answered_413_not_reset(server_address, chunked):
    body, content_type = photo_form()
    for _ in range(3):
        status, headers, answer = post(server_address, body, content_type, chunked)
        assert (status, answer) == (413, {"detail": TOO_BIG})
        assert headers["connection"] == "close"


def test_many_oversize_uploads_at_once_are_all_answered(server_address):
    body, content_type = photo_form()
    results = []

    def one(chunked: bool) -> None:
        try:
            results.append(post(server_address, body, content_type, chunked)[::2])
        except OSError as error:
            results.append(repr(error))

    threads = [threading.Thread(target=one, args=(index % 2 == 1,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [(413, {"detail": TOO_BIG})] * len(threads)


def exchange(address: tuple[str, int], request: bytes) -> tuple[bytes, float]:
    """Send raw request bytes, then read until the server closes: what it sent and the seconds until it closed."""
    with socket.create_connection(address, timeout=30) as connection:
        connection.sendall(request)
        started, answer = time.monotonic(), b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer, time.monotonic() - started


def test_a_client_waiting_for_100_continue_gets_the_413_at_once(server_address):
    head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {PHOTO_BYTES}\r\nExpect: 100-continue\r\n\r\n"
    answer, seconds = exchange(server_address, head.encode())
    assert answer.startswith(b"HTTP/1.1 413 ") and answer.endswith(json.dumps({"detail": TOO_BIG}).encode())
    assert seconds < uploads.DRAIN_SECONDS


def test_a_stalled_oversize_upload_is_answered_then_dropped(server_address, monkeypatch):
    monkeypatch.setattr(uploads, "DRAIN_SECONDS", 0.5)
    head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {PHOTO_BYTES}\r\n\r\n"
    answer, seconds = exchange(server_address, head.encode() + b"\xff\xd8 and then nothing")
    assert answer.startswith(b"HTTP/1.1 413 ") and answer.endswith(json.dumps({"detail": TOO_BIG}).encode())
    assert 0.4 < seconds < 5
