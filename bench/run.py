"""The serving benchmark: the tutorial way, the bare ceiling and digitserve, in one run on one machine.

    python bench/run.py                  # about 10 minutes; needs wrk (Debian: apt-get install wrk)
    python bench/run.py --seconds 3      # a quicker, noisier pass

For each server it measures cold start (process start to the first good /predict; for digitserve
also its very first start, with an empty cache, and the time until /explain answers, which needs
TensorFlow and the Keras model loaded), then drives
/predict with wrk at 1, 8 and 32 keep-alive clients on a 28x28 PNG, a 280x280 PNG and a 2000x2000
JPEG, and reads the RSS after the load. Before the servers it times the preprocessing alone, on
the bench uploads and, with MNIST (--data or $DIGITSERVE_MNIST), on every kind of image in
`training.upload_styles.GROUPS` (bench/preprocess_bench.py). It prints the tables and the ratios
against the targets, writes bench/results.json and bench/RESULTS.md, and rewrites the benchmark
sections of bench/README.md and of the project README (the per-kind tables go to bench/ only).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import preprocess_bench  # noqa: E402
from bench.images import IMAGES, png_280  # noqa: E402
from bench.load_test import free_port  # noqa: E402
from training.data import DataError, resolve_source  # noqa: E402
from training.machine import machine_description  # noqa: E402
from training.markdown import replace_section  # noqa: E402

README_SECTION = "benchmark"
WRK_SCRIPT = """
local file = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.method = "POST"
wrk.body = file:read("*all")
file:close()
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.connect + errors.read + errors.write + errors.status + errors.timeout))
end
"""


@dataclass
class Server:
    """A server under test: its command line and environment."""

    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    images: tuple[str, ...] = tuple(IMAGES)
    clients: tuple[int, ...] = (1, 8, 32)
    is_digitserve: bool = False


def servers(python: str) -> list[Server]:
    return [
        Server("tutorial way", [python, str(ROOT / "bench" / "tutorial_server.py")]),
        Server("bare ceiling", [python, str(ROOT / "bench" / "ceiling_server.py")]),
        Server("digitserve", [python, "-m", "app"], is_digitserve=True),
        Server("digitserve, 1 worker", [python, "-m", "app"], {"DIGITSERVE_WORKERS": "1"}, ("280x280 PNG",), (1, 32), True),
        Server("digitserve, keras backend", [python, "-m", "app"], {"DIGITSERVE_BACKEND": "keras"}, ("280x280 PNG",), (32,), True),
    ]


def multipart(data: bytes, content_type: str, filename: str = "digit", field_name: str = "file") -> tuple[bytes, str]:
    """A multipart/form-data body holding one file, and its Content-Type header."""
    return multipart_files([(data, content_type, filename)], field_name)


def multipart_files(files: list[tuple[bytes, str, str]], field_name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for data, content_type, filename in files:
        header = f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
        parts.append(header.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post(url: str, body: bytes, content_type: str, timeout: float = 5) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def start(server: Server, port: int, log_path: Path, cache_dir: Path) -> tuple[subprocess.Popen, float, float | None]:
    """Start a server; return it, its cold start (seconds to the first good /predict) and, for
    digitserve, the seconds until its first good /explain (TensorFlow and the Keras model loaded)."""
    env = {**os.environ, "DIGITSERVE_PORT": str(port), "TF_CPP_MIN_LOG_LEVEL": "2", "DIGITSERVE_CACHE_DIR": str(cache_dir), **server.env}
    command = [*server.command, "--port", str(port)] if "bench" in server.command[-1] else server.command
    body, content_type = multipart(png_280(), "image/png")
    # The server's log goes to a file: a pipe nobody reads would fill up and stall the server.
    log = open(log_path, "wb")  # noqa: SIM115 (the server process keeps it open)
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    while time.monotonic() - started < 120:
        if process.poll() is not None:
            raise RuntimeError(f"{server.name} exited during start-up: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            if post(f"http://127.0.0.1:{port}/predict", body, content_type) == 200:
                cold_start = time.monotonic() - started
                break
        except (ConnectionError, urllib.error.URLError, TimeoutError, OSError):
            pass
        time.sleep(0.02)
    else:
        raise RuntimeError(f"{server.name} did not answer within 120 s")
    if not server.is_digitserve:
        return process, cold_start, None
    while post(f"http://127.0.0.1:{port}/explain", body, content_type, timeout=60) != 200:
        if time.monotonic() - started > 120:
            raise RuntimeError(f"{server.name} gave no explanation within 120 s")
        time.sleep(0.1)
    return process, cold_start, time.monotonic() - started


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def rss_megabytes(pid: int) -> tuple[float, int]:
    """Total RSS of a process and its descendants in MB, and how many of them load a model (workers)."""
    import psutil

    root = psutil.Process(pid)
    processes = [root, *root.children(recursive=True)]
    total = sum(process.memory_info().rss for process in processes if process.is_running())
    heavy = sum(1 for process in processes if process.is_running() and process.memory_info().rss > 200e6)
    return total / 1e6, max(1, heavy)


def run_wrk(url: str, body_path: Path, content_type: str, clients: int, seconds: float, script: Path) -> dict:
    """Drive `url` with wrk for `seconds`; requests/s, p50 and p99 in ms, and errors."""
    env = {**os.environ, "BENCH_BODY": str(body_path), "BENCH_CONTENT_TYPE": content_type}
    threads = min(clients, 2)
    command = ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script), url]
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    line = next((line for line in output.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    raw = json.loads(line.removeprefix("RESULT "))
    return {
        "requests_per_s": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "errors": raw["errors"],
        "requests": raw["requests"],
    }


def measure_server(server: Server, args, workdir: Path, script: Path) -> dict:
    port = free_port()
    print(f"== {server.name}: starting", flush=True)
    slug = server.name.replace(" ", "_").replace(",", "")
    cache_dir = workdir / f"cache-{slug}"
    result = {"name": server.name, "runs": []}
    if server.is_digitserve:
        # The very first start converts the model and fills the cache; every later one reads it.
        process, result["first_start_s"], _ = start(server, port, workdir / f"{slug}-first.log", cache_dir)
        stop(process)
    process, result["cold_start_s"], result["tensorflow_loaded_s"] = start(server, port, workdir / f"{slug}.log", cache_dir)
    print(f"   cold start {result['cold_start_s']:.2f} s", flush=True)
    try:
        url = f"http://127.0.0.1:{port}/predict"
        for image_name in server.images:
            make, media = IMAGES[image_name]
            body, content_type = multipart(make(), media)
            body_path = workdir / f"{image_name.replace(' ', '_')}.body"
            body_path.write_bytes(body)
            run_wrk(url, body_path, content_type, 8, 1, script)  # warm-up
            for clients in server.clients:
                run = run_wrk(url, body_path, content_type, clients, args.seconds, script)
                run.update(image=image_name, clients=clients)
                result["runs"].append(run)
                print(
                    f"   {image_name:>15} {clients:>3} clients: {run['requests_per_s']:8.1f} req/s  p50 {run['p50_ms']:7.1f} ms  "
                    f"p99 {run['p99_ms']:7.1f} ms  errors {run['errors']}",
                    flush=True,
                )
        if server.name == "digitserve":
            result["batch"] = measure_batch(port, args, workdir, script)
        result["rss_mb"], result["workers"] = rss_megabytes(process.pid)
    finally:
        stop(process)
    return result


BATCH_CLIENTS = 8
PAIRS = 3


def measure_paired(args, workdir: Path, script: Path) -> dict:
    """digitserve against the tutorial way and the bare ceiling on 280x280 PNGs at 32 clients, in alternating cells.

    This machine's speed drifts from one minute to the next, so two cells measured minutes apart
    can differ by 20-40% for that alone. Here the three servers stay up and take turns, PAIRS
    times, and each turn gives two ratios; the targets are judged on their medians.
    """
    named = {server.name: server for server in servers(sys.executable)}
    body, content_type = multipart(png_280(), "image/png")
    body_path = workdir / "paired.body"
    body_path.write_bytes(body)
    print("== digitserve, the tutorial way and the bare ceiling, alternating", flush=True)
    processes, urls = [], {}
    try:
        for name in ("tutorial way", "bare ceiling", "digitserve"):
            port = free_port()
            slug = name.replace(" ", "_")
            process, _, _ = start(named[name], port, workdir / f"paired-{slug}.log", workdir / f"cache-{slug}")
            processes.append(process)
            urls[name] = f"http://127.0.0.1:{port}/predict"
            run_wrk(urls[name], body_path, content_type, 8, 1, script)  # warm-up
        pairs = []
        for _ in range(PAIRS):
            tutorial = run_wrk(urls["tutorial way"], body_path, content_type, 32, args.seconds, script)["requests_per_s"]
            ceiling = run_wrk(urls["bare ceiling"], body_path, content_type, 32, args.seconds, script)["requests_per_s"]
            ours = run_wrk(urls["digitserve"], body_path, content_type, 32, args.seconds, script)["requests_per_s"]
            pairs.append(
                {
                    "tutorial": tutorial,
                    "ceiling": ceiling,
                    "digitserve": ours,
                    "ratio": ours / ceiling if ceiling else math.inf,
                    "tutorial_ratio": ours / tutorial if tutorial else math.inf,
                }
            )
            print(
                f"   tutorial {tutorial:6.1f} req/s, ceiling {ceiling:7.1f} req/s, digitserve {ours:7.1f} req/s: "
                f"{pairs[-1]['tutorial_ratio']:.1f}x the tutorial way, {pairs[-1]['ratio']:.0%} of the ceiling",
                flush=True,
            )
    finally:
        for process in processes:
            stop(process)
    return {
        "pairs": pairs,
        "median_ratio": statistics.median(pair["ratio"] for pair in pairs),
        "median_tutorial_ratio": statistics.median(pair["tutorial_ratio"] for pair in pairs),
    }


def measure_batch(port: int, args, workdir: Path, script: Path) -> dict:
    """/predict/batch with 64 280x280 PNGs per request: images per second.

    Each keep-alive connection stays with the worker process that accepted it, so with as few
    clients as workers they all land on one worker about half the time, leaving a core idle.
    BATCH_CLIENTS connections keep every worker busy, which is the throughput being measured.
    """
    image = png_280()
    body, content_type = multipart_files([(image, "image/png", f"digit{index}.png") for index in range(64)], "files")
    body_path = workdir / "batch64.body"
    body_path.write_bytes(body)
    url = f"http://127.0.0.1:{port}/predict/batch"
    run_wrk(url, body_path, content_type, BATCH_CLIENTS, 1, script)
    run = run_wrk(url, body_path, content_type, BATCH_CLIENTS, args.seconds, script)
    run["images_per_s"] = run["requests_per_s"] * 64
    print(f"   /predict/batch, 64 x 280x280 PNG, {BATCH_CLIENTS} clients: {run['images_per_s']:.0f} images/s, errors {run['errors']}", flush=True)
    return run


def find(results: list[dict], server: str, image: str, clients: int) -> dict:
    entry = next(result for result in results if result["name"] == server)
    return next(run for run in entry["runs"] if run["image"] == image and run["clients"] == clients)


def checks(results: list[dict], preprocessing: dict, paired: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each of the issue's targets."""
    digitserve = next(result for result in results if result["name"] == "digitserve")
    worst_tail = max(run["p99_ms"] / run["p50_ms"] for run in digitserve["runs"] if run["clients"] == 32 and run["p50_ms"] > 0)
    errors = sum(run["errors"] for result in results if result["name"].startswith("digitserve") for run in result["runs"])
    rss_per_worker = max(result["rss_mb"] / result["workers"] for result in results if result["name"].startswith("digitserve"))
    png, jpeg = preprocessing["280x280 PNG"]["total_p50"], preprocessing["2000x2000 JPEG"]["total_p50"]
    # A very short run can end before the tutorial way finishes a single request: the ratio is then infinite, and not met.
    versus_tutorial = paired["median_tutorial_ratio"]
    versus_ceiling = paired["median_ratio"]
    images_per_s = digitserve["batch"]["images_per_s"]
    return [
        (
            f"throughput vs tutorial way, 32 clients, 280x280 PNG >= 30x (median of {len(paired['pairs'])} alternating turns)",
            _ratio(versus_tutorial, "{:.1f}x"),
            30 <= versus_tutorial < math.inf,
        ),
        (
            f"throughput vs bare ceiling, 32 clients, 280x280 PNG >= 75% (median of {len(paired['pairs'])} alternating turns)",
            _ratio(versus_ceiling, "{:.0%}"),
            0.75 <= versus_ceiling < math.inf,
        ),
        ("p99 <= 3x p50 at 32 clients (worst upload)", f"{worst_tail:.2f}x", worst_tail <= 3),
        ("errors (all digitserve runs) = 0", str(errors), errors == 0),
        ("cold start (first good /predict) <= 5 s", f"{digitserve['cold_start_s']:.2f} s", digitserve["cold_start_s"] <= 5),
        (
            "cold start with TensorFlow loaded (first good /explain) <= 5 s",
            f"{digitserve['tensorflow_loaded_s']:.2f} s",
            digitserve["tensorflow_loaded_s"] <= 5,
        ),
        ("RSS after load <= 800 MB per worker", f"{rss_per_worker:.0f} MB", rss_per_worker <= 800),
        (f"/predict/batch, 64 280x280 PNGs, {BATCH_CLIENTS} clients >= 2,000 images/s", f"{images_per_s:,.0f}/s", images_per_s >= 2000),
        ("preprocessing p50, 280x280 PNG <= 0.5 ms", f"{png:.3f} ms", png <= 0.5),
        ("preprocessing p50, 2000x2000 JPEG <= 10 ms", f"{jpeg:.2f} ms", jpeg <= 10),
    ]


def _seconds(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else "-"


def _ratio(value: float, template: str) -> str:
    return template.format(value) if value < math.inf else "n/a: the baseline answered nothing (run longer)"


def markdown(results: list[dict], preprocessing: dict, paired: dict, verdicts, machine: str, seconds: float) -> str:
    workers = next(result["workers"] for result in results if result["name"] == "digitserve")
    lines = [
        f"Measured by `python bench/run.py` on {machine}, wrk on the same machine, {seconds:g} s per cell. "
        f"digitserve runs as shipped ({workers} worker processes here) unless named.",
        "",
        "| server | upload | clients | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for run in result["runs"]:
            cells = [result["name"], run["image"], run["clients"], f"{run['requests_per_s']:,.1f}"]
            cells += [f"{run['p50_ms']:.1f}", f"{run['p99_ms']:.1f}", run["errors"]]
            lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    lines += [
        "",
        "| server | cold start | first start (empty cache) | TensorFlow loaded (first /explain) | RSS after load |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {result['name']} | {result['cold_start_s']:.2f} s | {_seconds(result.get('first_start_s'))} | "
        f"{_seconds(result.get('tensorflow_loaded_s'))} | {result['rss_mb']:,.0f} MB |"
        for result in results
    ]
    lines += [
        "",
        "| alternating turn (280x280 PNG, 32 clients) | tutorial way req/s | bare ceiling req/s | digitserve req/s | vs tutorial | vs ceiling |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {index} | {pair['tutorial']:,.1f} | {pair['ceiling']:,.1f} | {pair['digitserve']:,.1f} | "
        f"{_ratio(pair['tutorial_ratio'], '{:.1f}x')} | {_ratio(pair['ratio'], '{:.0%}')} |"
        for index, pair in enumerate(paired["pairs"], start=1)
    ]
    lines += ["", preprocess_bench.report(preprocessing), "", "| target | measured | met |", "|---|---:|---|"]
    lines += [f"| {target} | {measured} | {'yes' if met else '**no**'} |" for target, measured, met in verdicts]
    return "\n".join(lines) + "\n"


def write_reports(out: Path, readme: Path, text: str, kinds_text: str) -> None:
    """RESULTS.md in `out`, and the benchmark sections of `out`/README.md and of `readme`; the per-kind tables stay in `out`."""
    kinds_part = f"\n## Preprocessing per kind of image\n\n{kinds_text}" if kinds_text else ""
    (out / "RESULTS.md").write_text(f"# Benchmark results\n\n{text}{kinds_part}")
    sections = [(readme, README_SECTION, text), (out / "README.md", README_SECTION, text)]
    if kinds_text:
        sections.append((out / "README.md", preprocess_bench.README_SECTION, kinds_text))
    for path, name, section in sections:
        if replace_section(path, name, section):
            print(f"updated the {name} section of {path}")


def measure_kinds(source: str | None, per_kind: int) -> dict | None:
    """The per-kind preprocessing figures, or None (and a note why) without MNIST."""
    try:
        digits = preprocess_bench.load_digits(source)
    except DataError as error:
        print(f"   skipped: {error}", flush=True)
        return None
    if digits is None:
        print("   skipped: no MNIST data (pass --data or set DIGITSERVE_MNIST)", flush=True)
        return None
    by_kind = preprocess_bench.measure_kinds(digits, per_kind)
    print(preprocess_bench.kinds_report(by_kind), flush=True)
    return by_kind


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each measured cell in whole seconds (default 10)")
    parser.add_argument("--only", nargs="+", help="run only these servers (by name)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench", help="where results.json and RESULTS.md go")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md", help="README whose benchmark section is rewritten")
    parser.add_argument("--data", help="MNIST .npz file or IDX folder for the per-kind preprocessing tables (default: $DIGITSERVE_MNIST)")
    parser.add_argument("--per-kind", type=int, default=40, help="images rendered per kind for those tables (default 40)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)", file=sys.stderr)
        return 2
    print("== preprocessing micro-benchmark", flush=True)
    preprocessing = preprocess_bench.measure(300)
    print(preprocess_bench.report(preprocessing), flush=True)
    print("== preprocessing per kind of image", flush=True)
    by_kind = measure_kinds(resolve_source(args.data), args.per_kind)
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        script = Path(workdir) / "post.lua"
        script.write_text(WRK_SCRIPT)
        for server in servers(sys.executable):
            if args.only and server.name not in args.only:
                continue
            results.append(measure_server(server, args, Path(workdir), script))
        names = {result["name"] for result in results}
        complete = {"tutorial way", "bare ceiling", "digitserve"} <= names
        paired = measure_paired(args, Path(workdir), script) if complete else None
    machine = machine_description()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine, "servers": results, "paired": paired, "preprocessing": preprocessing, "preprocessing_by_kind": by_kind}
    (args.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    if not complete:
        print("partial run: the ratios need the tutorial way, the bare ceiling and digitserve")
        return 0
    verdicts = checks(results, preprocessing, paired)
    text = markdown(results, preprocessing, paired, verdicts, machine, args.seconds)
    kinds_text = preprocess_bench.kinds_markdown(by_kind, machine, f"python bench/run.py --per-kind {args.per_kind}") if by_kind else ""
    print()
    print(text)
    write_reports(args.out, args.readme, text, kinds_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
