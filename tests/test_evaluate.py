"""The shipped model clears the accuracy bar, and the evaluation CLI reports and gates on it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.classifier import load_keras_model
from training import evaluate
from training.evaluate import evaluate_model, score

ACCURACY_BAR = 0.996


def test_score_counts_a_confusion_matrix():
    result = score(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), num_classes=3)
    assert result.accuracy == 0.75
    assert result.confusion == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert result.recall[1] == 0.5 and result.precision[2] == 0.5


@pytest.mark.slow
def test_shipped_model_scores_at_least_99_60_on_mnist_test(mnist, shipped_model_path):
    evaluation = evaluate_model(load_keras_model(shipped_model_path), mnist.x_test, mnist.y_test)
    assert evaluation.accuracy >= ACCURACY_BAR, f"test accuracy {evaluation.accuracy:.4%}"
    card = json.loads((shipped_model_path.parent / "card.json").read_text())
    assert abs(card["test"]["accuracy"] - evaluation.accuracy) < 1e-6, "model/card.json is out of date"


@pytest.mark.slow
def test_cli_prints_the_report_and_gates_on_min_accuracy(mnist, shipped_model_path, capsys):
    data = [] if mnist.source == "keras.datasets.mnist" else ["--data", mnist.source]
    assert evaluate.main(["--model", str(shipped_model_path), *data, "--min-accuracy", "0.99"]) == 0
    report = capsys.readouterr().out
    assert "test accuracy:" in report and "confusion matrix" in report
    assert evaluate.main(["--model", str(shipped_model_path), *data, "--min-accuracy", "0.99999"]) == 1


def test_cli_bad_model_path_is_one_sentence(tmp_path, capsys, mnist):
    data = [] if mnist.source == "keras.datasets.mnist" else ["--data", mnist.source]
    assert evaluate.main(["--model", str(tmp_path / "none.keras"), *data]) == 2
    assert "does not exist" in capsys.readouterr().err
