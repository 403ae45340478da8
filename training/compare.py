"""Train every network with its tutorial's recipe and with the project's, and compare them.

python -m training.compare --data mnist.npz            # about an hour on a 2-core CPU
python -m training.compare --data mnist.npz --quick    # one epoch on 2,000 images each (smoke run)

Writes model/comparison.{json,md,png}; with --readme FILE, also the table between FILE's comparison
markers. Finished runs are kept in --runs (default runs/), so an interrupted comparison resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.markdown import replace_section
from training.recipes import recipe_for

README_SECTION = "comparison"


@dataclass(frozen=True)
class Run:
    """One training run of the comparison; `epochs` shortens a slow recipe (None: the recipe's own)."""

    arch: str
    recipe: str
    epochs: int | None = None

    @property
    def name(self) -> str:
        return f"{self.arch}-{self.recipe}"


# Shortened runs are marked in the table; the shipped network runs its full recipe.
RUNS = (
    Run("softmax", "tutorial"),
    Run("softmax", "project"),
    Run("lenet", "tutorial"),
    Run("lenet", "project", epochs=6),
    Run("tf2-cnn", "tutorial"),
    Run("tf2-cnn", "project", epochs=6),
    Run("keras-cnn", "tutorial", epochs=3),
    Run("keras-cnn", "project", epochs=4),
    Run("digitnet", "project"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.compare", description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST .npz file or IDX folder (default: $DIGITSERVE_MNIST, else Keras' download)")
    parser.add_argument("--out", type=Path, default=Path("model"), help="where the table and plot go (default model/)")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="where each run's model and card go (default runs/)")
    parser.add_argument("--readme", type=Path, help="also rewrite the comparison section of this Markdown file (default: none)")
    parser.add_argument("--only", nargs="+", metavar="ARCH", help="compare only these networks")
    parser.add_argument("--per-style", type=int, default=30, help="upload-style fixtures per style (default 30, 12 styles)")
    parser.add_argument("--quick", action="store_true", help="one epoch on 2,000 images per run: checks the machinery, not the networks")
    parser.add_argument("--fresh", action="store_true", help="retrain runs that already finished")
    return parser.parse_args(argv)


def train_run(run: Run, args: argparse.Namespace) -> dict:
    """Train one run (or reuse its finished card) and return its card."""
    from training import train

    folder = args.runs / run.name
    card_path = folder / "card.json"
    if card_path.is_file() and not args.fresh:
        card = json.loads(card_path.read_text())
        if card.get("comparison_quick") == args.quick:
            print(f"== {run.name}: reusing the finished run in {folder}")
            return card
    command = ["--arch", run.arch, "--recipe", run.recipe, "--out", str(folder), "--no-plots", "--track-test", "--no-calibration"]
    if args.data:
        command += ["--data", args.data]
    if args.quick:
        command += ["--limit", "2000", "--epochs", "1"]
    elif run.epochs is not None:
        command += ["--epochs", str(run.epochs)]
    print(f"== {run.name}: python -m training.train {' '.join(command)}", flush=True)
    if train.main(command) != 0:
        raise RuntimeError(f"training {run.name} failed")
    import keras

    keras.backend.clear_session()
    card = json.loads(card_path.read_text())
    card["comparison_quick"] = args.quick
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return card


def upload_fixtures(per_style: int, data) -> tuple[np.ndarray, np.ndarray]:
    """The upload-style fixtures, preprocessed once by app/preprocess.py: (images, labels)."""
    from app.preprocess import PreprocessError, preprocess
    from training.upload_styles import render_fixtures

    images, labels = [], []
    for _style, label, image_bytes in render_fixtures(data.x_test, data.y_test, per_style):
        try:
            images.append(preprocess(image_bytes))
        except PreprocessError:
            images.append(np.zeros((28, 28), np.float32))  # Counts as a miss for every network alike.
        labels.append(label)
    return np.stack(images), np.array(labels)


def latency_ms(classifier, batch_size: int, repeats: int = 200) -> float:
    """Median wall time of one compiled model call on a batch of `batch_size` images."""
    batch = np.random.default_rng(0).random((batch_size, 28, 28), dtype=np.float32)
    classifier.predict(batch)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        classifier.predict(batch)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def measure(run: Run, card: dict, folder: Path, fixtures: tuple[np.ndarray, np.ndarray]) -> dict:
    """The comparison row for a finished run."""
    from app.classifier import Classifier

    model_path = folder / card["model_file"]
    classifier = Classifier.load(model_path)
    fixture_images, fixture_labels = fixtures
    upload_accuracy = float((classifier.predict(fixture_images).argmax(axis=1) == fixture_labels).mean())
    training = card["training"]
    recipe = recipe_for(run.arch, run.recipe)
    return {
        "run": run.name,
        "arch": run.arch,
        "recipe": run.recipe,
        "parameters": card["parameters"],
        "file_bytes": model_path.stat().st_size,
        "epochs": training["epochs"],
        "recipe_epochs": recipe.epochs,
        "seconds_per_epoch": training["seconds_per_epoch"],
        "test_accuracy": card["test"]["accuracy"],
        "test_accuracy_per_epoch": card["history"].get("test_accuracy", []),
        "seconds_to_99_6": seconds_to_accuracy(card["history"], 0.996),
        "upload_accuracy": upload_accuracy,
        "published_accuracy": recipe.published_accuracy,
        "latency_batch1_ms": latency_ms(classifier, 1),
        "latency_batch64_ms": latency_ms(classifier, 64),
        "machine": training["machine"],
    }


def seconds_to_accuracy(history: dict, target: float) -> float | None:
    """Training seconds until the first epoch whose test accuracy reaches `target` (None: never)."""
    pairs = zip(history.get("test_accuracy", []), history.get("elapsed_seconds", []), strict=False)
    return next((seconds for accuracy, seconds in pairs if accuracy >= target), None)


def markdown_table(rows: list[dict], per_style: int) -> str:
    """The comparison as a Markdown table, with the shortened runs marked."""
    lines = [
        "| network | recipe | parameters | file | epochs | s/epoch | to 99.6% | MNIST test | published | upload styles | batch 1 | batch 64 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        epochs = f"{row['epochs']}" + (f" of {row['recipe_epochs']}*" if row["epochs"] < row["recipe_epochs"] else "")
        published = f"{row['published_accuracy']:.2%}" if row["published_accuracy"] else "-"
        to_target = f"{row['seconds_to_99_6'] / 60:.1f} min" if row["seconds_to_99_6"] is not None else "-"
        lines.append(
            f"| {row['arch']} | {row['recipe']} | {row['parameters']:,} | {row['file_bytes'] / 1e6:.2f} MB | {epochs} "
            f"| {row['seconds_per_epoch']:.1f} | {to_target} | {row['test_accuracy']:.2%} | {published} | {row['upload_accuracy']:.2%} "
            f"| {row['latency_batch1_ms']:.2f} ms | {row['latency_batch64_ms']:.2f} ms |"
        )
    machine = rows[0]["machine"] if rows else "unknown"
    lines += [
        "",
        f"\\* shortened run: fewer epochs than the recipe's, to keep the comparison near an hour on {machine}.",
        f"Upload styles: {per_style * 12} fixtures ({per_style} in each of 12 upload styles) through `app/preprocess.py`. "
        "To 99.6%: training time until the first epoch at 99.6% MNIST test accuracy (the test set is scored after "
        "every epoch for this column only; it never chooses anything). "
        "Latency: median compiled model call, without HTTP or preprocessing. "
        "Published: the test accuracy the tutorial reports for its recipe.",
    ]
    return "\n".join(lines) + "\n"


def plot_comparison(rows: list[dict], path: Path) -> None:
    """Bars of MNIST test and upload-style accuracy per run, and training time per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{row['arch']}\n{row['recipe']}" for row in rows]
    positions = np.arange(len(rows))
    figure, (accuracy_axis, time_axis) = plt.subplots(1, 2, figsize=(14, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    accuracy_axis.bar(positions - 0.2, [row["test_accuracy"] * 100 for row in rows], 0.4, label="MNIST test")
    accuracy_axis.bar(positions + 0.2, [row["upload_accuracy"] * 100 for row in rows], 0.4, label="upload styles")
    accuracy_axis.set(ylabel="accuracy (%)", ylim=(85, 100), title="Accuracy")
    time_axis.barh(positions, [row["seconds_per_epoch"] for row in rows], color="tab:gray")
    time_axis.set(xlabel="seconds per epoch", title="Training time", yticks=positions, yticklabels=[label.replace("\n", " ") for label in labels])
    time_axis.invert_yaxis()
    accuracy_axis.set_xticks(positions, labels, fontsize=8)
    accuracy_axis.legend(loc="lower right")
    accuracy_axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from training.data import load_mnist_for_command

    data = load_mnist_for_command(args.data)
    if data is None:
        return 2
    runs = [run for run in RUNS if not args.only or run.arch in args.only]
    if not runs:
        print(f"error: --only names no network of the comparison ({', '.join(sorted({run.arch for run in RUNS}))})", file=sys.stderr)
        return 2
    cards = {run: train_run(run, args) for run in runs}
    fixtures = upload_fixtures(args.per_style, data)
    rows = [measure(run, card, args.runs / run.name, fixtures) for run, card in cards.items()]
    table = markdown_table(rows, args.per_style)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "comparison.json").write_text(json.dumps({"quick": args.quick, "rows": rows}, indent=2) + "\n")
    (args.out / "comparison.md").write_text("# Network comparison\n\n![comparison](comparison.png)\n\n" + table)
    plot_comparison(rows, args.out / "comparison.png")
    print(table)
    if args.readme is not None and replace_section(args.readme, README_SECTION, table):
        print(f"updated the comparison table in {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
