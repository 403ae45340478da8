"""Load test: 32 concurrent clients on a mix of good and hostile uploads, then RSS before and after.

    python bench/load_test.py --seconds 60 --users 32

Starts the service as `python -m app` would, warms it up, records its RSS, runs Locust headless,
records the RSS again, and exits non-zero on any unexpected answer or RSS growth over 10%.
"""

from __future__ import annotations

import argparse
import csv
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_megabytes(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the service exited during start-up")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the service did not become ready")


def run_locust(url: str, users: int, seconds: int, folder: str) -> dict:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "bench" / "locustfile.py"),
        "--headless",
        "--only-summary",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--host",
        url,
        "--csv",
        f"{folder}/load",
        "--exit-code-on-error",
        "0",
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(f"{folder}/load_stats.csv") as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    return rows["Aggregated"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--max-rss-growth", type=float, default=0.10, help="allowed RSS growth after load (fraction)")
    args = parser.parse_args(argv)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DIGITSERVE_PORT": str(port), "DIGITSERVE_LOG_LEVEL": "warning"}
    service = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env)
    try:
        wait_ready(url, service)
        with tempfile.TemporaryDirectory() as folder:
            run_locust(url, args.users, min(10, args.seconds), folder)  # warm-up: caches, pools, allocator
            warmed = rss_megabytes(service.pid)
            totals = run_locust(url, args.users, args.seconds, folder)
        after = rss_megabytes(service.pid)
    finally:
        service.terminate()
        service.wait(timeout=60)
    requests, failures = int(totals["Request Count"]), int(totals["Failure Count"])
    growth = (after - warmed) / warmed
    print(
        f"{args.users} users for {args.seconds} s: {requests} requests, {float(totals['Requests/s']):.0f} req/s, "
        f"{failures} unexpected answers, p50 {totals['50%']} ms, p99 {totals['99%']} ms"
    )
    print(f"RSS after warm-up {warmed:.0f} MB, after load {after:.0f} MB ({growth:+.1%}); service exit status {service.returncode}")
    ok = failures == 0 and requests > 0 and growth <= args.max_rss_growth and service.returncode == 0
    print("load test passed" if ok else "load test FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
