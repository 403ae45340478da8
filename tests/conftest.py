"""Shared fixtures and helpers: MNIST (from $DIGITSERVE_MNIST, else Keras' download), the shipped
model, the app in-process and served by uvicorn, image encoding, multipart bodies and `python -m app`."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from app.__main__ import listening_socket, server_options
from app.config import SHIPPED_MODEL, Settings
from app.main import create_app
from bench.load_test import free_port
from training.data import load_mnist, resolve_source

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = Path(__file__).parent / "data"
# Screenshots the browser tests take, for a person to look at; ignored by git, so a test run leaves the tree clean.
ARTIFACTS = ROOT / "test-artifacts"


def save_screenshot(page, name: str) -> Path:
    """A full-page screenshot of `page` saved as ARTIFACTS/`name`.png; returns its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """The LiteRT copies this run makes go to a folder of its own, for servers it starts too."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield Path(os.environ["XDG_CACHE_HOME"]) / "digitserve"
    if previous is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(scope="session")
def mnist():
    """The full MNIST set, loaded once per run."""
    return load_mnist(resolve_source(None))


@pytest.fixture(scope="session")
def shipped_model_path() -> Path:
    assert SHIPPED_MODEL.is_file(), f"the shipped model {SHIPPED_MODEL} is missing"
    return SHIPPED_MODEL


@pytest.fixture(scope="session")
def settings(shipped_model_path) -> Settings:
    return Settings(model_path=shipped_model_path)


@pytest.fixture(scope="session")
def client(settings):
    """A client of the app on the shipped model, with its lifespan run (the model loaded once)."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def server_address(settings):
    """The app served by uvicorn, with the options `python -m app` uses, in a thread on a free port."""
    with served(settings) as address:
        yield address


@contextmanager
def served(settings: Settings) -> Iterator[tuple[str, int]]:
    """An app on `settings` served by uvicorn in a thread, as `python -m app` serves it: its (host, port)."""
    listener = listening_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), **{**server_options(settings), "log_level": "warning"}))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 90
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield listener.getsockname()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    """A Pillow image as the bytes of a file in `fmt`."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_bytes(pixels: np.ndarray, mode: str = "L") -> bytes:
    """Encode an array as PNG bytes."""
    return encode(Image.fromarray(pixels, mode=mode))


def digit_png(mnist_digit: np.ndarray, size: int = 280) -> bytes:
    """An MNIST digit rendered black on white at `size` pixels, as people draw it."""
    return encode(Image.fromarray(255 - mnist_digit, mode="L").resize((size, size), Image.Resampling.BILINEAR))


def number_pixels(mnist_digits: np.ndarray, gap: int = 8, scale: int = 4) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """MNIST digits side by side, black on white, `gap` pixels apart before scaling by `scale`, and each digit's
    ink box (x, y, width, height) in the result's pixels."""
    margin = 12
    width = 2 * margin + 28 * len(mnist_digits) + gap * (len(mnist_digits) - 1)
    canvas = np.zeros((28 + 2 * margin, max(width, 28 + 2 * margin)), dtype=np.uint8)
    boxes = []
    for index, digit in enumerate(mnist_digits):
        left = margin + index * (28 + gap)
        canvas[margin : margin + 28, left : left + 28] = np.maximum(canvas[margin : margin + 28, left : left + 28], digit)
        rows, cols = np.flatnonzero(digit.max(axis=1) > 64), np.flatnonzero(digit.max(axis=0) > 64)
        boxes.append(((left + cols[0]) * scale, (margin + rows[0]) * scale, (cols[-1] - cols[0] + 1) * scale, (rows[-1] - rows[0] + 1) * scale))
    image = Image.fromarray(255 - canvas, mode="L").resize((canvas.shape[1] * scale, canvas.shape[0] * scale), Image.Resampling.BICUBIC)
    return np.asarray(image), boxes


def multipart_body(parts: list[tuple[str, str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body of (field, file name, bytes, content type) parts, and its Content-Type."""
    boundary = uuid.uuid4().hex
    body = b""
    for field, filename, data, content_type in parts:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
        body += head.encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def start_service(timeout: float = 90) -> tuple[subprocess.Popen, str]:
    """`python -m app` in a process of its own on a free port, once its /readyz answers 200: the process and its URL."""
    port = free_port()
    env = {**os.environ, "DIGITSERVE_PORT": str(port), "DIGITSERVE_LOG_LEVEL": "warning"}
    process = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the service did not become ready")
        time.sleep(0.2)


# The browser tests' Chromium and the real service they drive.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> str:
    """The Chromium the browser tests drive."""
    path = os.environ.get("DIGITSERVE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("no Chromium found: install Debian's chromium package or set DIGITSERVE_CHROMIUM")
    return path


@pytest.fixture(scope="module")
def server_url():
    """The real service in its own process, as `python -m app` starts it."""
    process, url = start_service()
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    """Chromium, the system's (or $DIGITSERVE_CHROMIUM), launched once per module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_page(browser, url: str, viewport: dict):
    """A page on `url` in a fresh browser context, recording console errors and every request it makes."""
    page = browser.new_context(viewport=viewport, device_scale_factor=1).new_page()
    page.console_errors = []
    page.requests = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    page.on("request", lambda request: page.requests.append(request.url))
    page.goto(url + "/")
    return page


def draw(page, strokes, canvas_width: int = 280):
    """Draw polylines given in canvas coordinates (0-`canvas_width` across) on the page's canvas with the mouse."""
    box = page.locator("#canvas").bounding_box()
    scale = box["width"] / canvas_width
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=12)
        page.mouse.up()
