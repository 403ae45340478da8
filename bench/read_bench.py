"""What reading a whole number costs: `/read` on a 4-digit photo against `/predict` on a one-digit photo.

    python bench/read_bench.py                       # about a minute; MNIST from --data or $DIGITSERVE_MNIST
    python bench/read_bench.py --readme bench/README.md

Both photos are MNIST test digits written on lit, grainy paper and saved as phone JPEGs: the
number 1000x300, the digit 300x300. One service (`python -m app`, one worker) answers both, and
one client on a keep-alive connection sends them in turns, so both see the same machine; the
target is a p50 for `/read` at most 3x that of `/predict`.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load_test import free_port, wait_ready  # noqa: E402
from bench.preprocess_bench import percentile  # noqa: E402
from training.data import load_mnist_for_command  # noqa: E402
from training.machine import machine_description  # noqa: E402
from training.markdown import replace_section  # noqa: E402

README_SECTION = "read-benchmark"
TARGET_RATIO = 3.0
NUMBER_DIGITS = (2, 0, 2, 6)


def photo(digits: list[np.ndarray], width: int, height: int, seed: int = 0) -> bytes:
    """MNIST digits (white on black) written side by side on lit, grainy paper, as a phone JPEG of width x height."""
    rng = np.random.default_rng(seed)
    digit_height = int(height * 0.6)
    ink = np.zeros((height, width), dtype=np.float32)
    step = width // (len(digits) + 1)
    for index, digit in enumerate(digits):
        drawn = np.asarray(Image.fromarray(digit).resize((digit_height, digit_height), Image.Resampling.BICUBIC), dtype=np.float32) / 255
        left = (index + 1) * step - digit_height // 2
        top = (height - digit_height) // 2
        ink[top : top + digit_height, left : left + digit_height] = np.maximum(ink[top : top + digit_height, left : left + digit_height], drawn)
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    paper = 200 + 40 * rows + rng.normal(0, 5, (height, width)).astype(np.float32)
    gray = paper * (1 - ink) + 35 * ink
    rgb = np.stack([gray, gray * 0.97, gray * 0.93], axis=-1).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def bench_uploads(data) -> dict[str, tuple[str, bytes]]:
    """The two timed requests: (route, JPEG bytes) by name."""
    first = {label: int(np.flatnonzero(data.y_test == label)[0]) for label in range(10)}
    number = [data.x_test[first[label]] for label in NUMBER_DIGITS]
    return {
        "/read, 4-digit 1000x300 JPEG": ("/read", photo(number, 1000, 300)),
        "/predict, 1-digit 300x300 JPEG": ("/predict", photo(number[-1:], 300, 300)),
    }


def timed_ms(connection: http.client.HTTPConnection, route: str, body: bytes) -> float:
    """One request's latency, from sending to the last byte of a 200 answer."""
    started = time.perf_counter()
    connection.request("POST", route, body=body, headers={"Content-Type": "image/jpeg"})
    response = connection.getresponse()
    answer = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200:
        raise RuntimeError(f"{route} answered {response.status}: {answer[:300]!r}")
    return elapsed


def measure(port: int, uploads: dict[str, tuple[str, bytes]], requests: int) -> dict[str, list[float]]:
    """Latencies of each upload, sent in turns on one keep-alive connection after a warm-up."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for route, body in uploads.values():
        for _ in range(10):
            timed_ms(connection, route, body)
    timings: dict[str, list[float]] = {name: [] for name in uploads}
    for _ in range(requests):
        for name, (route, body) in uploads.items():
            timings[name].append(timed_ms(connection, route, body))
    connection.close()
    return timings


def report(timings: dict[str, list[float]], requests: int) -> tuple[str, float]:
    """The Markdown table of p50 and p99 per request, and the ratio of the p50s."""
    lines = ["| request | p50 | p99 |", "|---|---:|---:|"]
    medians = {}
    for name, values in timings.items():
        ordered = sorted(values)
        medians[name] = statistics.median(ordered)
        lines.append(f"| {name} | {medians[name]:.1f} ms | {percentile(ordered, 0.99):.1f} ms |")
    read, predict = medians.values()
    ratio = read / predict
    verdict = "met" if ratio <= TARGET_RATIO else "missed"
    lines += [
        "",
        f"`/read` p50 / `/predict` p50: **{ratio:.2f}x** (target at most {TARGET_RATIO:.0f}x: {verdict}).",
        f"{requests} requests each, in turns, one client, one worker; {machine_description()}. `python bench/read_bench.py`.",
    ]
    return "\n".join(lines) + "\n", ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/read_bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST .npz file or IDX folder (default: $DIGITSERVE_MNIST, else Keras' download)")
    parser.add_argument("--requests", type=int, default=300, help="timed requests of each kind (default 300)")
    parser.add_argument("--readme", type=Path, action="append", default=[], help=f"also write the table into this file's {README_SECTION!r} section")
    args = parser.parse_args(argv)
    data = load_mnist_for_command(args.data)
    if data is None:
        return 2
    uploads = bench_uploads(data)
    port = free_port()
    env = {**os.environ, "DIGITSERVE_PORT": str(port), "DIGITSERVE_WORKERS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_ready(f"http://127.0.0.1:{port}", process)
            timings = measure(port, uploads, args.requests)
        finally:
            process.terminate()
            process.wait(timeout=40)
    table, ratio = report(timings, args.requests)
    print(table)
    for readme in args.readme:
        if not replace_section(readme, README_SECTION, table):
            print(f"warning: {readme} has no {README_SECTION!r} section to rewrite", file=sys.stderr)
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
