"""How requests reach the model: `Predictor.classify`, called by every route that classifies
images, and `Predictor.read_number` for `/read`, which classifies every way of reading a number's
ink in one call of its own and counts only the digits it answers.

Routes are `def` handlers, so each request runs in FastAPI's thread pool: it preprocesses its own
inputs and makes its own model call there, and waits only for the model calls ahead of it (the
model takes one call at a time). A micro-batcher that gathered concurrent requests into shared
calls measured no faster than this, with LiteRT or with the Keras backend, so there is none.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.classifier import Classifier, ModelLoadError
from app.errors import NOT_A_DIGIT_SENTENCE, SEVERAL_DIGITS_SENTENCE, ExplanationsUnavailable, NotADigit, SeveralDigits, error_reason
from app.explain import Explainer, Method, overlay_png
from app.observability import Metrics
from app.preprocess import NoDigitFound, PreprocessError, SeveralDigitsFound, preprocess, side_by_side_parts, to_png, wider_than_a_digit
from app.schemas import Explanation, ModelInfo, NumberReading, Prediction, ReadDigit
from app.segmentation import MAX_DIGITS, DigitImage, InkGroup, TooManyDigits, number_parts

# Choosing how to read a piece of ink (one digit, or touching digits cut apart), as `_best_reading` says.
DIGIT_ODDS_WEIGHT = 3.0
# A part the features call no digit, shorter than this share of the tallest, is a mark and is left out.
UNSURE_MARK_HEIGHT = 0.7


@dataclass(frozen=True)
class Reading:
    """What the model made of one input: the 28x28 image it saw, its probabilities and whether it is a digit, or why it could not be read."""

    model: ModelInfo
    image: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    error: PreprocessError | None = None
    is_digit: bool = True
    # Preprocessing found digits written beside the one it chose: `image` shows them all.
    several_digits: bool = False

    def refusal(self) -> NotADigit:
        """Why this input is not read as a digit: several digits side by side, or something else."""
        if self.several_digits or side_by_side_parts(self.image) > 1:
            return SeveralDigits(SEVERAL_DIGITS_SENTENCE)
        return NotADigit(NOT_A_DIGIT_SENTENCE)

    def prediction(self, include_image: bool = False, accept_uncertain: bool = False) -> Prediction:
        """The answer for this input; raises its preprocessing error, or its refusal unless `accept_uncertain`."""
        if self.error is not None:
            raise self.error
        if not self.is_digit and not accept_uncertain:
            raise self.refusal()
        probabilities = self.probabilities.astype(np.float64)
        probabilities /= probabilities.sum()
        best = int(probabilities.argmax())
        # Built from values that are valid by construction, so pydantic's validation is skipped.
        return Prediction.model_construct(
            digit=best,
            confidence=float(probabilities[best]),
            is_digit=self.is_digit,
            reason=None if self.is_digit else error_reason(self.refusal()),
            probabilities=probabilities.tolist(),
            model=self.model,
            input_image=png_data_url(self.image) if include_image else None,
        )


class Predictor:
    """Preprocessing and the loaded classifier, behind one call; explanations on demand."""

    def __init__(self, classifier: Classifier, metrics: Metrics, max_pixels: int):
        self.classifier = classifier
        self.metrics = metrics
        self.max_pixels = max_pixels
        self._explainer: Explainer | None = None
        self._explainer_lock = threading.Lock()
        # FastAPI's pool runs up to 40 handlers at once; a 25-megapixel upload takes about 190 MiB
        # while it is decoded. One preprocessing per core keeps memory bounded and loses no speed.
        self._preprocessing = threading.BoundedSemaphore(os.cpu_count() or 1)

    @property
    def model_name(self) -> str:
        """The served model's name, as responses and protocol URLs give it."""
        return self.classifier.name

    def classify(self, inputs: Sequence[bytes | np.ndarray]) -> list[Reading]:
        """Preprocess each upload (a (28, 28) array counts as preprocessed), then classify them all in one model call.

        An upload that cannot be preprocessed gets a `Reading` holding its error; the others are still read.
        """
        model = ModelInfo.model_construct(name=self.classifier.name, version=self.classifier.version)
        outcomes = [item if isinstance(item, np.ndarray) else self._preprocess(item) for item in inputs]
        # Digits side by side are classified too: with accept_uncertain, the answer is the best guess.
        images = [outcome.digit if isinstance(outcome, SeveralDigitsFound) else outcome for outcome in outcomes if not _unreadable(outcome)]
        probabilities, is_digit = self.classifier.read(np.stack(images)) if images else (np.empty((0, 10), np.float32), np.empty(0, bool))
        self.metrics.count_predictions(probabilities.argmax(axis=1))
        rows = iter(zip(probabilities, is_digit.tolist(), strict=True))
        readings = []
        for outcome in outcomes:
            if _unreadable(outcome):
                readings.append(Reading(model, error=outcome))
            elif isinstance(outcome, SeveralDigitsFound):
                row, _ = next(rows)
                readings.append(Reading(model, outcome.digit, row, is_digit=False, several_digits=True))
            else:
                row, digit = next(rows)
                readings.append(Reading(model, outcome, row, is_digit=digit and not wider_than_a_digit(outcome)))
        return readings

    def read_number(self, data: bytes) -> NumberReading:
        """Read the digits of a written number, left to right, classifying every way to read its pieces in one model call."""
        with self._preprocessing:
            groups = number_parts(data, self.max_pixels)
        images = [digit for group in groups for digit in group.images()]
        probabilities, margins = self.classifier.read_margins(np.stack([digit.image for digit in images]))
        scored = zip(images, probabilities, margins.tolist(), strict=True)
        answers = {id(digit): (row.astype(np.float64) / row.sum(), margin) for digit, row, margin in scored}
        chosen = [digit for group in groups for digit in _best_reading(group, answers)]
        tallest = max(digit.box[3] for digit in chosen)
        chosen = [digit for digit in chosen if answers[id(digit)][1] <= 0 or digit.box[3] >= UNSURE_MARK_HEIGHT * tallest]
        if not chosen:
            raise NoDigitFound("what the image holds are small marks, not digits")
        if len(chosen) > MAX_DIGITS:
            raise TooManyDigits(f"the image holds {len(chosen)}")
        digits = []
        for digit in chosen:
            row, margin = answers[id(digit)]
            best = int(row.argmax())
            digits.append(ReadDigit(digit=best, confidence=float(row[best]), is_digit=margin <= 0, probabilities=row.tolist(), box=list(digit.box)))
        self.metrics.count_predictions([digit.digit for digit in digits])
        model = ModelInfo(name=self.classifier.name, version=self.classifier.version)
        return NumberReading(number="".join(str(digit.digit) for digit in digits), digits=digits, model=model)

    def explain(self, reading: Reading, method: Method) -> Explanation:
        """A heatmap of the pixels that drove a reading's digit, computed from the Keras model."""
        digit = reading.prediction(accept_uncertain=True).digit
        explained_digit, heat = self.explainer().explain(reading.image, method, digit=digit)
        overlay = "data:image/png;base64," + base64.b64encode(overlay_png(reading.image, heat)).decode("ascii")
        return Explanation(method=method, digit=explained_digit, heatmap=heat.round(4).tolist(), overlay=overlay)

    def explainer(self) -> Explainer:
        """The explainer, built on the first /explain so that plain predictions never pay for it."""
        with self._explainer_lock:
            if self._explainer is None:
                try:
                    self._explainer = Explainer(self.classifier.model)
                except ModelLoadError as error:
                    raise ExplanationsUnavailable(f"Explanations are unavailable: {error}") from None
            return self._explainer

    def _preprocess(self, data: bytes) -> np.ndarray | PreprocessError:
        try:
            with self._preprocessing:
                return preprocess(data, self.max_pixels)
        except PreprocessError as error:
            return error


def _unreadable(outcome: np.ndarray | PreprocessError) -> bool:
    """Whether preprocessing gave no image to classify."""
    return isinstance(outcome, PreprocessError) and not isinstance(outcome, SeveralDigitsFound)


def _best_reading(group: InkGroup, answers: dict[int, tuple[np.ndarray, float]]) -> tuple[DigitImage, ...]:
    """The reading of a piece of ink the classifier is surest of: as one digit, or cut into touching digits.

    `answers` holds each digit image's probabilities and its not-a-digit margin (`Classifier.read_margins`).
    A reading scores the sum of its digits' log-confidences and, weighted by DIGIT_ODDS_WEIGHT, of
    the logs of their chances of being digits at all (the logistic of minus the margin): two
    touching digits read as one, or a piece cut out of a digit, is often confident but looks
    less like a digit. Among the paths through the cuts, the best is found a cut at a time.
    """

    def score(digit: DigitImage) -> float:
        row, margin = answers[id(digit)]
        return float(np.log(max(row.max(), 1e-6))) - DIGIT_ODDS_WEIGHT * float(np.logaddexp(0.0, margin))

    candidates = [(sum(score(digit) for digit in reading), reading) for reading in group.readings]
    # best[cut]: the best score of a path from cut 0 to this cut, and the path.
    best: list[tuple[float, tuple[DigitImage, ...]] | None] = [(0.0, ())] + [None] * group.last_cut
    for (first, last), digit in sorted(group.pieces.items()):
        if best[first] is not None:
            total = best[first][0] + score(digit)
            if best[last] is None or total > best[last][0]:
                best[last] = (total, (*best[first][1], digit))
    if group.pieces and best[-1] is not None:
        candidates.append(best[-1])
    return max(candidates, key=lambda candidate: candidate[0])[1]


def png_data_url(digit: np.ndarray) -> str:
    """A (28, 28) float image as a PNG data URL."""
    return "data:image/png;base64," + base64.b64encode(to_png(digit)).decode("ascii")
