"""Slow end-to-end checks through POST /predict: the MNIST round trip and upload-style images."""

from __future__ import annotations

import numpy as np
import pytest

from app.classifier import load_keras_model
from tests.conftest import digit_png
from training.evaluate import evaluate_model
from training.upload_styles import STYLES, accuracy_by_style

pytestmark = pytest.mark.slow


def classify_via_api(client, data: bytes) -> int:
    response = client.post("/predict", files={"file": ("digit", data, "application/octet-stream")})
    assert response.status_code in (200, 422), response.text
    return response.json()["digit"] if response.status_code == 200 else -1


def test_mnist_round_trip_through_the_api_within_0_3_points(client, mnist, shipped_model_path):
    """All 10,000 test digits, rendered as 280x280 black-on-white PNGs, sent through /predict."""
    raw = evaluate_model(load_keras_model(shipped_model_path), mnist.x_test, mnist.y_test).accuracy
    predicted = np.array([classify_via_api(client, digit_png(image)) for image in mnist.x_test])
    through_api = float((predicted == mnist.y_test).mean())
    print(f"\nraw arrays {raw:.4%}, through /predict {through_api:.4%}")
    assert through_api >= raw - 0.003


def test_upload_styles_accuracy(client, mnist):
    """Images made the way people upload them: 97% overall and no style under 90%."""
    scores = accuracy_by_style(lambda data: classify_via_api(client, data), mnist.x_test, mnist.y_test, per_style=60)
    print("\n" + "\n".join(f"{style:>18} {score:.2%}" for style, score in scores.items()))
    assert set(scores) == {*STYLES, "overall"}
    assert scores["overall"] >= 0.97
    assert min(scores.values()) >= 0.90
