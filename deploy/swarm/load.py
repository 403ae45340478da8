"""Steady, bounded load for check.sh: POST one PNG to /predict at a fixed rate, one line a request.

Each line is `start end outcome`, outcome `ok` for a 200 naming the expected digit and anything
else for a failure (the status, or the error's name), so that check.sh can count the requests and
failures of any time window. It runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import threading
import time
import uuid
from pathlib import Path


def multipart_body(image: bytes, filename: str) -> tuple[bytes, str]:
    """A multipart/form-data body holding the image as the `file` field, and its content type."""
    boundary = uuid.uuid4().hex
    body = (
        (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\nContent-Type: image/png\r\n\r\n').encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def post_once(host: str, port: int, body: bytes, content_type: str, digit: int, timeout: float) -> str:
    """`ok` when /predict answers 200 with the expected digit, else what went wrong."""
    # A new connection each time, as a fresh client would: none survives a proxy restart unseen.
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("POST", "/predict", body, {"Content-Type": content_type})
        response = connection.getresponse()
        answer = response.read()
        if response.status != 200:
            return f"http_{response.status}"
        return "ok" if json.loads(answer)["digit"] == digit else "wrong_digit"
    except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
        return type(error).__name__
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--image", type=Path, required=True, help="the PNG to post")
    parser.add_argument("--digit", type=int, required=True, help="the digit the image shows")
    parser.add_argument("--rate", type=float, default=20.0, help="requests a second, in total")
    parser.add_argument("--clients", type=int, default=4, help="clients sending at once, each at rate/clients")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a request counts as failed")
    parser.add_argument("--log", type=Path, required=True)
    arguments = parser.parse_args()

    body, content_type = multipart_body(arguments.image.read_bytes(), arguments.image.name)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    period = arguments.clients / arguments.rate
    lock = threading.Lock()

    with arguments.log.open("a", buffering=1) as log:

        def client(offset: float) -> None:
            due = time.monotonic() + offset
            while not stop.is_set():
                stop.wait(max(0.0, due - time.monotonic()))
                if stop.is_set():
                    break
                start = time.time()
                outcome = post_once(arguments.host, arguments.port, body, content_type, arguments.digit, arguments.timeout)
                with lock:
                    log.write(f"{start:.3f} {time.time():.3f} {outcome}\n")
                # A slow answer delays this client's next request instead of bunching them up.
                due = max(due + period, time.monotonic())

        clients = [threading.Thread(target=client, args=(i * period / arguments.clients,)) for i in range(arguments.clients)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()


if __name__ == "__main__":
    main()
