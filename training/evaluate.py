"""Evaluate a saved model on the MNIST test set: accuracy, per-class metrics, confusion matrix.

python -m training.evaluate --model model/digitserve.keras --data mnist.npz --min-accuracy 0.996
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.preprocess import mnist_pixels_to_input
from training.data import DATA_ENV_VAR, DataError, load_mnist, resolve_source

DEFAULT_MODEL = Path("model/digitserve.keras")


@dataclass(frozen=True)
class Evaluation:
    """Test-set metrics of one model."""

    accuracy: float
    precision: list[float]
    recall: list[float]
    confusion: list[list[int]]

    def as_dict(self) -> dict:
        """The metrics as plain JSON-ready values."""
        return {
            "accuracy": round(self.accuracy, 6),
            "per_class": {
                str(digit): {"precision": round(p, 6), "recall": round(r, 6)}
                for digit, (p, r) in enumerate(zip(self.precision, self.recall, strict=True))
            },
            "confusion_matrix": self.confusion,
        }


def predict_probabilities(model, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities for float images, computed in fixed-size batches."""
    batches = [np.asarray(model(images[start : start + batch_size], training=False)) for start in range(0, len(images), batch_size)]
    return np.concatenate(batches)


def score(labels: np.ndarray, predictions: np.ndarray, num_classes: int = 10) -> Evaluation:
    """Accuracy, per-class precision and recall, and the confusion matrix (rows: true digit)."""
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    true_positives = np.diag(confusion).astype(float)
    precision = true_positives / np.maximum(confusion.sum(axis=0), 1)
    recall = true_positives / np.maximum(confusion.sum(axis=1), 1)
    return Evaluation(
        accuracy=float(true_positives.sum() / max(len(labels), 1)),
        precision=precision.tolist(),
        recall=recall.tolist(),
        confusion=confusion.tolist(),
    )


def evaluate_model(model, images_uint8: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Evaluate `model` on raw MNIST pixels, normalised exactly as the service does."""
    probabilities = predict_probabilities(model, mnist_pixels_to_input(images_uint8))
    return score(labels, probabilities.argmax(axis=1))


def format_report(evaluation: Evaluation) -> str:
    """A human-readable table of the metrics."""
    lines = [f"test accuracy: {evaluation.accuracy:.4%}", "", "digit  precision  recall"]
    for digit, (precision, recall) in enumerate(zip(evaluation.precision, evaluation.recall, strict=True)):
        lines.append(f"{digit:>5}  {precision:9.4f}  {recall:6.4f}")
    lines += ["", "confusion matrix (rows: true digit, columns: predicted)", "     " + "".join(f"{d:>6}" for d in range(10))]
    for digit, row in enumerate(evaluation.confusion):
        lines.append(f"{digit:>5}" + "".join(f"{count:>6}" for count in row))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help=f"saved .keras model (default {DEFAULT_MODEL})")
    parser.add_argument("--data", help=f"MNIST .npz file or IDX folder (default: ${DATA_ENV_VAR}, else Keras' download)")
    parser.add_argument("--min-accuracy", type=float, default=None, help="exit 1 when test accuracy is below this (0-1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from app.classifier import ModelLoadError, load_keras_model

    try:
        data = load_mnist(resolve_source(args.data))
        model = load_keras_model(args.model)
    except (DataError, ModelLoadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    evaluation = evaluate_model(model, data.x_test, data.y_test)
    print(format_report(evaluation))
    if args.min_accuracy is not None and evaluation.accuracy < args.min_accuracy:
        print(f"\nFAIL: accuracy {evaluation.accuracy:.4%} is below --min-accuracy {args.min_accuracy:.4%}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
