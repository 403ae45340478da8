"""What the calibration adds to every answer: the temperature and the not-a-digit score, per image.

    python bench/calibration_bench.py                 # the shipped model, batch 1 as /predict calls it, and batch 64
    python bench/calibration_bench.py --repeats 20000

It times `Calibration.probabilities` and `Calibration.not_digit_score` on the features the shipped
model's LiteRT copy answers for MNIST-like inputs, beside the model call itself, in one process and
in turns, so the ratio holds on a noisy machine. The target is at most 0.1 ms an image.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from app.classifier import Classifier  # noqa: E402
from app.runtimes import probe_images  # noqa: E402

TARGET_MS = 0.1
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "model" / "digitserve.keras"


def median_ms(call, repeats: int) -> float:
    """The median wall time of `call`, in milliseconds, over `repeats` calls."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(classifier: Classifier, batch_size: int, repeats: int) -> dict[str, float]:
    """Per-image medians of the model call, the temperature and the score at one batch size, taken in turns."""
    images = np.resize(probe_images(), (batch_size, 28, 28)).astype(np.float32)
    outputs = classifier.outputs(images)
    probabilities, features = outputs[:, :10], outputs[:, 10:]
    calibration = classifier.calibration
    rounds = {"model call": [], "temperature": [], "not-a-digit score": []}
    for _ in range(5):
        rounds["model call"].append(median_ms(lambda: classifier.outputs(images), max(1, repeats // 50)))
        rounds["temperature"].append(median_ms(lambda: calibration.probabilities(probabilities), repeats // 5))
        rounds["not-a-digit score"].append(median_ms(lambda: calibration.not_digit_score(features), repeats // 5))
    return {name: statistics.median(values) / batch_size for name, values in rounds.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/calibration_bench.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--repeats", type=int, default=5000)
    args = parser.parse_args(argv)
    # One BLAS thread, as the service's workers run.
    with threadpool_limits(1):
        classifier = Classifier.load(args.model, cache_dir=None)
        if classifier.calibration is None:
            print(f"error: {args.model} ships no calibration; run python -m training.calibrate", file=sys.stderr)
            return 2
        print("| batch | model call, ms an image | temperature, ms an image | not-a-digit score, ms an image | calibration / model call |")
        print("|---:|---:|---:|---:|---:|")
        worst = 0.0
        for batch_size in (1, 64):
            costs = measure(classifier, batch_size, args.repeats)
            added = costs["temperature"] + costs["not-a-digit score"]
            worst = max(worst, added)
            print(
                f"| {batch_size} | {costs['model call']:.4f} | {costs['temperature']:.4f} | {costs['not-a-digit score']:.4f} "
                f"| {added / costs['model call']:.2f} |"
            )
    print(f"\ncalibration per image: at most {worst:.4f} ms (target {TARGET_MS} ms): {'met' if worst <= TARGET_MS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
