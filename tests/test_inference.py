"""app/inference.py: every route's one way to the model, alone and under concurrent requests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from app.classifier import Classifier
from app.inference import Predictor
from app.observability import Metrics
from app.preprocess import UnsupportedImage
from tests.conftest import digit_png


class CountingClassifier:
    """The shipped classifier, counting its model calls and the images in each."""

    def __init__(self, classifier: Classifier):
        self.classifier = classifier
        self.name, self.version, self.calibration = classifier.name, classifier.version, classifier.calibration
        self.calls: list[int] = []

    def read(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append(len(images))
        return self.classifier.read(images)


@pytest.fixture(scope="module")
def classifier(shipped_model_path, private_cache):
    return Classifier.load(shipped_model_path, cache_dir=private_cache)


@pytest.fixture
def counting(classifier):
    return CountingClassifier(classifier)


@pytest.fixture(scope="module")
def uploads(mnist) -> list[bytes]:
    return [digit_png(mnist.x_test[index]) for index in range(16)]


def test_uploads_and_arrays_share_one_model_call_and_a_bad_file_keeps_its_error(counting, mnist, uploads):
    predictor = Predictor(counting, Metrics(), max_pixels=25_000_000)
    array = (mnist.x_test[5] / 255).astype(np.float32)
    readings = predictor.classify([uploads[0], b"not an image", array, uploads[1]])
    assert counting.calls == [3]
    assert isinstance(readings[1].error, UnsupportedImage) and readings[1].probabilities is None
    assert [readings[index].prediction().digit for index in (0, 2, 3)] == [int(mnist.y_test[index]) for index in (0, 5, 1)]
    with pytest.raises(UnsupportedImage):
        readings[1].prediction()


def test_concurrent_requests_each_make_their_own_call_and_get_the_answers_they_get_alone(counting, uploads):
    """As FastAPI's thread pool runs them: every caller waits for its own call only, never for a queue it must drain."""
    predictor = Predictor(counting, Metrics(), max_pixels=25_000_000)
    alone = [predictor.classify([upload])[0].probabilities for upload in uploads]
    counting.calls.clear()
    with ThreadPoolExecutor(max_workers=len(uploads)) as pool:
        together = list(pool.map(lambda upload: predictor.classify([upload])[0].probabilities, uploads))
    assert counting.calls == [1] * len(uploads)
    np.testing.assert_allclose(np.stack(together), np.stack(alone), atol=1e-6)


def test_predictions_are_counted_by_digit(classifier, uploads, mnist):
    metrics = Metrics()
    Predictor(classifier, metrics, max_pixels=25_000_000).classify(uploads[:4])
    counted = {digit: metrics.predictions.labels(digit=str(digit))._value.get() for digit in range(10)}
    expected = {digit: float(list(mnist.y_test[:4]).count(digit)) for digit in range(10)}
    assert counted == expected
