"""app/batching.py: concurrent requests share model calls, and the answers do not change."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.batching import MicroBatcher
from app.classifier import Classifier
from app.main import create_app
from tests.conftest import digit_png


@pytest.fixture(scope="module")
def classifier(shipped_model_path):
    return Classifier.load(shipped_model_path)


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist.x_test[:40].astype(np.float32) / 255.0


def submit_together(batcher: MicroBatcher, images: np.ndarray, stagger_s: float = 0.0) -> np.ndarray:
    """Submit each image from a thread of its own, all at once (or `stagger_s` apart); their answers in order."""
    start = threading.Barrier(len(images))

    def submit(index: int):
        start.wait()
        time.sleep(stagger_s * index)
        return batcher.submit(images[index]).result(timeout=30)

    with ThreadPoolExecutor(max_workers=len(images)) as pool:
        return np.stack(list(pool.map(submit, range(len(images)))))


def slowed(predict, seconds: float = 0.02):
    """The model call made slower, so that images submitted together queue behind a running call."""

    def slow_predict(images):
        time.sleep(seconds)
        return predict(images)

    return slow_predict


def test_concurrent_requests_share_calls_and_match_single_calls(classifier, digits):
    batcher = MicroBatcher(slowed(classifier.predict), max_batch=16)
    batched = submit_together(batcher, digits)
    alone = np.concatenate([classifier.predict(image[np.newaxis]) for image in digits])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert max(batcher.batch_sizes) > 1, "40 concurrent requests should not run one by one"
    assert max(batcher.batch_sizes) <= 16 and sum(batcher.batch_sizes) == 40


def test_a_lone_request_is_called_at_once_by_its_own_thread(classifier, digits):
    batcher = MicroBatcher(classifier.predict, max_batch=32, max_wait_ms=0)
    answer = batcher.submit(digits[0])
    assert answer.done(), "with no call running, the submitting thread makes the call itself"
    assert batcher.batch_sizes == [1]
    np.testing.assert_allclose(answer.result(), classifier.predict(digits[:1])[0], atol=1e-6)


def test_waiting_gathers_requests_that_arrive_a_little_later(classifier, digits):
    batcher = MicroBatcher(classifier.predict, max_batch=32, max_wait_ms=200)
    submit_together(batcher, digits[:4], stagger_s=0.005)
    assert batcher.batch_sizes == [4]


def test_a_failing_model_call_fails_its_requests_and_the_batcher_goes_on(digits):
    calls = []

    def flaky(images):
        calls.append(len(images))
        if len(calls) == 1:
            raise RuntimeError("model failed")
        return np.zeros((len(images), 10), np.float32)

    batcher = MicroBatcher(flaky)
    with pytest.raises(RuntimeError, match="model failed"):
        batcher.submit(digits[0]).result()
    assert batcher.submit(digits[1]).result().shape == (10,)


def test_a_closed_batcher_refuses_new_images(classifier, digits):
    batcher = MicroBatcher(classifier.predict)
    batcher.close()
    with pytest.raises(RuntimeError, match="shutting down"):
        batcher.submit(digits[0])


def test_batch_size_must_be_positive(classifier):
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(classifier.predict, max_batch=0)


def test_predict_answers_are_identical_with_batching_on_and_off(settings, mnist):
    uploads = [digit_png(mnist.x_test[index]) for index in range(12)]
    answers = {}
    for batch_max_size in (1, 32):
        app = create_app(settings.model_copy(update={"batch_max_size": batch_max_size}))
        with TestClient(app) as client:
            assert app.state.predictor.batcher.max_batch == batch_max_size
            answers[batch_max_size] = [client.post("/predict", files={"file": ("d.png", data, "image/png")}).json() for data in uploads]
    for off, on in zip(answers[1], answers[32], strict=True):
        assert off["digit"] == on["digit"]
        np.testing.assert_allclose(off["probabilities"], on["probabilities"], atol=1e-5)
