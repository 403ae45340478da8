"""Micro-benchmark of app/preprocess.py: median and p99 time per upload, decode and the rest apart.

python bench/preprocess_bench.py [--repeats 500]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threadpoolctl import threadpool_limits  # noqa: E402

from app.preprocess import decode, preprocess, to_mnist  # noqa: E402
from bench.images import IMAGES  # noqa: E402

TARGETS_MS = {"280x280 PNG": 0.5, "2000x2000 JPEG": 10.0}


def timings_ms(function, argument, repeats: int) -> list[float]:
    function(argument)  # warm caches and lazy imports
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function(argument)
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)


def measure(repeats: int) -> dict[str, dict[str, float]]:
    """{image: {total_p50, total_p99, decode_p50, pipeline_p50}} in milliseconds."""
    threadpool_limits(1, user_api="blas")  # as the service runs it
    results = {}
    for name, (make, _) in IMAGES.items():
        data = make()
        count = repeats if "JPEG" not in name else max(20, repeats // 10)
        total = timings_ms(preprocess, data, count)
        decoded = decode(data).pixels
        results[name] = {
            "bytes": len(data),
            "total_p50": statistics.median(total),
            "total_p99": total[int(len(total) * 0.99) - 1],
            "decode_p50": statistics.median(timings_ms(decode, data, count)),
            "pipeline_p50": statistics.median(timings_ms(to_mnist, decoded, count)),
        }
    return results


def report(results: dict) -> str:
    lines = ["| upload | bytes | decode p50 | rest of preprocessing p50 | total p50 | total p99 | target |", "|---|---:|---:|---:|---:|---:|---|"]
    for name, row in results.items():
        target = TARGETS_MS.get(name)
        verdict = f"<= {target} ms: {'met' if row['total_p50'] <= target else 'NOT met'}" if target else "-"
        lines.append(
            f"| {name} | {row['bytes']:,} | {row['decode_p50']:.3f} ms | {row['pipeline_p50']:.3f} ms | {row['total_p50']:.3f} ms "
            f"| {row['total_p99']:.3f} ms | {verdict} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/preprocess_bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    results = measure(args.repeats)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
