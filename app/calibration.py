"""Confidence that means what it says, and a test of whether an image is a digit at all.

Both come from the model's own outputs, fitted when the model is trained (`python -m
training.calibrate`) and shipped beside it:

- a temperature that softens the softmax until its confidence matches how often it is right on
  digits rendered the ways people upload them (Guo et al. 2017, "On Calibration of Modern Neural
  Networks");
- a small detector on the features the last layer reads (its 256 inputs), trained to tell digits
  from letters, shapes, scribbles, words, rows of digits and bare paper (outlier exposure, Hendrycks
  et al. 2019). Softmax confidence cannot do this: half of all rendered letters get a top
  probability above 0.99. Measured on letters in font families held out of its training, it
  refused 93% of them where a Mahalanobis distance on the same features (Lee et al. 2018) refused
  44%, both at 1% of digits refused.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CALIBRATION_SUFFIX = ".calibration.npz"
# Float32 probabilities underflow to 0 past a logit gap of about 87; the floor keeps their logarithm finite.
SMALLEST_PROBABILITY = np.finfo(np.float32).tiny
ARRAYS = ("hidden_weights", "hidden_bias", "output_weights")


class CalibrationError(Exception):
    """The calibration file is unreadable, of the wrong shape, or differs from the one the card records."""


@dataclass(frozen=True)
class Calibration:
    """A temperature for the softmax, and a one-hidden-layer detector whose score above `threshold` means "not a digit"."""

    temperature: float
    hidden_weights: np.ndarray  # (F, H), with the features' standardisation folded in
    hidden_bias: np.ndarray  # (H,)
    output_weights: np.ndarray  # (H,)
    output_bias: float
    threshold: float  # a logit: scores above it are "not a digit"

    @property
    def feature_count(self) -> int:
        """How many features the detector reads."""
        return self.hidden_weights.shape[0]

    def probabilities(self, probabilities: np.ndarray) -> np.ndarray:
        """The model's softmax outputs (N, 10) recomputed at this temperature."""
        return at_temperature(probabilities, self.temperature)

    def not_digit_score(self, features: np.ndarray) -> np.ndarray:
        """(N, F) features -> (N,) logits of "not a digit": high for letters, shapes and paper, low for digits."""
        hidden = np.maximum(np.asarray(features, dtype=np.float32) @ self.hidden_weights + self.hidden_bias, 0.0)
        return hidden @ self.output_weights + self.output_bias

    def not_digit_margin(self, features: np.ndarray) -> np.ndarray:
        """(N, F) features -> (N,) not-a-digit scores less the threshold: above 0 means "not a digit"."""
        return self.not_digit_score(features) - self.threshold

    def is_digit(self, features: np.ndarray) -> np.ndarray:
        """(N, F) features -> (N,) booleans: the image looks like a digit."""
        return self.not_digit_margin(features) <= 0

    def to_bytes(self) -> bytes:
        """The calibration as an .npz file's bytes."""
        buffer = io.BytesIO()
        arrays = {name: np.asarray(getattr(self, name), dtype=np.float32) for name in ARRAYS}
        np.savez(buffer, temperature=self.temperature, output_bias=self.output_bias, threshold=self.threshold, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "the calibration") -> Calibration:
        """Read a calibration written by `to_bytes`; raises CalibrationError on anything else."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as stored:
                arrays = {name: np.asarray(stored[name], dtype=np.float32) for name in ARRAYS}
                scalars = {name: float(stored[name]) for name in ("temperature", "output_bias", "threshold")}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CalibrationError(f"{source} is not a calibration file: {error}") from None
        weights = arrays["hidden_weights"]
        hidden = weights.shape[1] if weights.ndim == 2 else -1
        if arrays["hidden_bias"].shape != (hidden,) or arrays["output_weights"].shape != (hidden,):
            shapes = ", ".join(f"{name} {array.shape}" for name, array in arrays.items())
            raise CalibrationError(f"{source} holds arrays of inconsistent shapes: {shapes}")
        finite = all(np.isfinite(array).all() for array in arrays.values()) and all(np.isfinite(list(scalars.values())))
        if not (finite and scalars["temperature"] > 0):
            raise CalibrationError(f"{source} holds a temperature of {scalars['temperature']} or values that are not finite")
        return cls(**scalars, **arrays)


def at_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax outputs (N, 10) recomputed as if the logits had been divided by `temperature`."""
    logits = np.log(np.maximum(probabilities.astype(np.float64), SMALLEST_PROBABILITY)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)


def calibration_path(model_path: Path) -> Path:
    """Where the calibration of a model file lies: beside it, named after it."""
    return model_path.with_name(model_path.stem + CALIBRATION_SUFFIX)


def load_calibration(model_path: Path, recorded_sha256: str | None) -> Calibration | None:
    """The calibration beside a model, or None when there is none; refused when its sha256 differs from the card's."""
    path = calibration_path(model_path)
    if not path.is_file():
        if recorded_sha256:
            raise CalibrationError(f"the model card records a calibration file {path.name}, but {path} does not exist")
        return None
    data = path.read_bytes()
    if recorded_sha256 and hashlib.sha256(data).hexdigest() != recorded_sha256:
        raise CalibrationError(f"{path} does not match the sha256 recorded in the model card: it was altered or damaged")
    return Calibration.from_bytes(data, str(path))
