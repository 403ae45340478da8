"""app/calibration.py and training/calibrate.py: the temperature, the not-a-digit detector, and their file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from app.calibration import Calibration, CalibrationError, at_temperature, calibration_path, load_calibration
from app.classifier import Classifier, ModelLoadError
from app.preprocess import side_by_side_parts
from training.calibrate import calibrate, expected_calibration_error, fit_temperature, roc_points


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def small_calibration(threshold: float = 0.0) -> Calibration:
    rng = np.random.default_rng(0)
    return Calibration(1.5, rng.normal(size=(4, 3)).astype(np.float32), np.zeros(3, np.float32), np.ones(3, np.float32), -1.0, threshold)


def test_a_temperature_keeps_the_digit_and_softens_the_confidence():
    probabilities = softmax(np.random.default_rng(1).normal(scale=4, size=(50, 10)))
    softened = at_temperature(probabilities, 2.0)
    assert (softened.argmax(axis=1) == probabilities.argmax(axis=1)).all()
    assert (softened.max(axis=1) <= probabilities.max(axis=1) + 1e-6).all()
    np.testing.assert_allclose(softened.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(at_temperature(probabilities, 1.0), probabilities, atol=1e-6)


def test_a_temperature_survives_probabilities_that_underflowed_to_zero():
    probabilities = np.zeros((1, 10), np.float32)
    probabilities[0, 3] = 1.0
    softened = at_temperature(probabilities, 3.0)
    assert np.isfinite(softened).all() and softened.argmax() == 3


def test_fitting_recovers_the_temperature_that_made_a_model_overconfident():
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=3, size=(20_000, 10))
    labels = np.array([rng.choice(10, p=row) for row in softmax(logits)])
    overconfident = softmax(2.0 * logits)
    assert fit_temperature(overconfident, labels) == pytest.approx(2.0, rel=0.05)
    assert expected_calibration_error(at_temperature(overconfident, 2.0), labels) < expected_calibration_error(overconfident, labels) / 3


@pytest.mark.parametrize(
    "confidence, correct, expected",
    [(1.0, True, 0.0), (1.0, False, 1.0), (0.95, True, 0.05)],
    ids=["confident and right", "confident and wrong", "slightly underconfident"],
)
def test_calibration_error_is_the_gap_between_confidence_and_accuracy(confidence, correct, expected):
    probabilities = np.full((10, 10), (1 - confidence) / 9)
    probabilities[:, 0] = confidence
    labels = np.zeros(10, int) if correct else np.ones(10, int)
    assert expected_calibration_error(probabilities, labels) == pytest.approx(expected, abs=1e-9)


def test_roc_area_is_one_when_every_negative_scores_above_every_digit():
    digits_refused, negatives_refused, area = roc_points(np.array([0.0, 0.1, 0.2]), np.array([1.0, 2.0]))
    assert area == 1.0 and digits_refused[0] == 0 and negatives_refused[-1] == 1


def test_the_detector_scores_in_numpy_as_a_one_hidden_layer_network():
    calibration = small_calibration(threshold=0.5)
    features = np.random.default_rng(3).normal(size=(6, 4)).astype(np.float32)
    expected = np.maximum(features @ calibration.hidden_weights, 0).sum(axis=1) - 1.0
    np.testing.assert_allclose(calibration.not_digit_score(features), expected, rtol=1e-5)
    assert (calibration.is_digit(features) == (expected <= 0.5)).all()


def test_a_calibration_file_round_trips_and_rejects_what_is_not_one(tmp_path):
    calibration = small_calibration()
    again = Calibration.from_bytes(calibration.to_bytes())
    assert again.temperature == calibration.temperature and again.feature_count == 4
    np.testing.assert_array_equal(again.hidden_weights, calibration.hidden_weights)
    with pytest.raises(CalibrationError, match="not a calibration file"):
        Calibration.from_bytes(b"not an npz")
    broken = Calibration(-1.0, calibration.hidden_weights, calibration.hidden_bias, calibration.output_weights, 0.0, 0.0)
    with pytest.raises(CalibrationError, match="temperature"):
        Calibration.from_bytes(broken.to_bytes())


def test_a_calibration_that_differs_from_the_card_is_refused(shipped_model_path, tmp_path):
    model = tmp_path / shipped_model_path.name
    shutil.copy(shipped_model_path, model)
    shutil.copy(shipped_model_path.parent / "card.json", tmp_path / "card.json")
    card = json.loads((tmp_path / "card.json").read_text())
    if "calibration" not in card:
        pytest.skip("the shipped model has no calibration")
    shutil.copy(calibration_path(shipped_model_path), calibration_path(model))
    assert load_calibration(model, card["calibration"]["sha256"]) is not None
    calibration_path(model).write_bytes(small_calibration().to_bytes())
    with pytest.raises(ModelLoadError, match="does not match the sha256"):
        Classifier.load(model, cache_dir=None)
    calibration_path(model).unlink()
    with pytest.raises(ModelLoadError, match="does not exist"):
        Classifier.load(model, cache_dir=None)


def strokes(*columns: tuple[int, int, int, int]) -> np.ndarray:
    image = np.zeros((28, 28), np.float32)
    for left, right, top, bottom in columns:
        image[top:bottom, left:right] = 1.0
    return image


@pytest.mark.parametrize(
    "image, parts",
    [
        (strokes((12, 15, 4, 24)), 1),
        (strokes((6, 9, 4, 24), (16, 21, 4, 24)), 2),
        (strokes((3, 6, 4, 24), (11, 15, 5, 23), (20, 24, 4, 24)), 3),
        # The two strokes of a 4 or a 5 overlap across: one column.
        (strokes((8, 18, 4, 7), (8, 11, 7, 24), (14, 18, 10, 24)), 1),
        # A dot or a dash beside a digit is no second digit.
        (strokes((8, 11, 4, 24), (18, 21, 20, 23)), 1),
        (np.zeros((28, 28), np.float32), 0),
    ],
    ids=["one stroke", "two digits", "three digits", "parts overlapping across", "digit and dot", "blank"],
)
def test_side_by_side_parts_counts_tall_separate_columns(image, parts):
    assert side_by_side_parts(image) == parts


def test_measuring_again_needs_a_shipped_calibration(shipped_model_path, tmp_path):
    """--report-only keeps the calibration as shipped; a model without one says so before any rendering starts."""
    bare = tmp_path / shipped_model_path.name
    shutil.copy(shipped_model_path, bare)
    with pytest.raises(ValueError, match="no calibration beside it"):
        calibrate(bare, data=None, refit=False)
