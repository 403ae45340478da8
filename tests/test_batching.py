"""app/batching.py: concurrent requests share model calls, and the answers do not change."""

from __future__ import annotations

import asyncio

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


async def _gather_predictions(batcher: MicroBatcher, images: np.ndarray) -> np.ndarray:
    await batcher.start()
    try:
        return np.stack(await asyncio.gather(*(batcher.predict(image) for image in images)))
    finally:
        await batcher.stop()


def test_concurrent_requests_share_calls_and_match_single_calls(classifier, digits):
    batcher = MicroBatcher(classifier.predict, max_batch=16)
    batched = asyncio.run(_gather_predictions(batcher, digits))
    alone = np.concatenate([classifier.predict(image[np.newaxis]) for image in digits])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert max(batcher.batch_sizes) > 1, "40 concurrent requests should not run one by one"
    assert max(batcher.batch_sizes) <= 16 and sum(batcher.batch_sizes) == 40


def test_a_lone_request_runs_at_once_alone(classifier, digits):
    batcher = MicroBatcher(classifier.predict, max_batch=32, max_wait_ms=0)
    asyncio.run(_gather_predictions(batcher, digits[:1]))
    assert batcher.batch_sizes == [1]


def test_waiting_gathers_requests_that_arrive_a_little_later(classifier, digits):
    async def staggered(batcher):
        await batcher.start()
        try:

            async def later(index):
                await asyncio.sleep(0.002 * index)
                return await batcher.predict(digits[index])

            return await asyncio.gather(*(later(index) for index in range(4)))
        finally:
            await batcher.stop()

    batcher = MicroBatcher(classifier.predict, max_batch=32, max_wait_ms=50)
    asyncio.run(staggered(batcher))
    assert batcher.batch_sizes == [4]


def test_a_failing_model_call_fails_its_requests_and_the_batcher_goes_on(digits):
    calls = []

    def flaky(images):
        calls.append(len(images))
        if len(calls) == 1:
            raise RuntimeError("model failed")
        return np.zeros((len(images), 10), np.float32)

    async def scenario():
        batcher = MicroBatcher(flaky)
        await batcher.start()
        try:
            with pytest.raises(RuntimeError, match="model failed"):
                await batcher.predict(digits[0])
            return await batcher.predict(digits[1])
        finally:
            await batcher.stop()

    assert asyncio.run(scenario()).shape == (10,)


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
