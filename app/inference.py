"""From uploaded bytes to predictions: preprocessing and the model call, off the event loop."""

from __future__ import annotations

import asyncio
import base64
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from starlette.concurrency import run_in_threadpool

from app.batching import MicroBatcher
from app.classifier import Classifier, ModelLoadError
from app.errors import RequestError, preprocess_answer
from app.explain import Explainer, Method, overlay_png
from app.observability import Metrics
from app.preprocess import PreprocessError, preprocess, to_png
from app.schemas import BatchError, BatchItem, ExplainedPrediction, Explanation, ModelInfo, Prediction


class Predictor:
    """Turns image bytes into `Prediction`s with the loaded classifier."""

    def __init__(self, classifier: Classifier, metrics: Metrics, max_pixels: int, batcher: MicroBatcher, preprocess_threads: int = 2):
        self.classifier = classifier
        self.batcher = batcher
        # As many preprocessing threads as cores: more would only queue on the GIL and thrash.
        self.preprocess_pool = ThreadPoolExecutor(max_workers=preprocess_threads, thread_name_prefix="preprocess")
        self.metrics = metrics
        self.max_pixels = max_pixels
        self.model_info = ModelInfo(name=classifier.name, version=classifier.version)
        self._explainer: Explainer | None = None
        self._explainer_lock = threading.Lock()

    async def predict_bytes(self, data: bytes, include_image: bool = False) -> Prediction:
        """Preprocess and classify one upload; preprocessing errors propagate to the error handlers."""
        digit, answer = await asyncio.get_running_loop().run_in_executor(self.preprocess_pool, self._preprocess_and_submit, data)
        # Done already when the preprocessing thread made the model call itself (no call was running).
        probabilities = answer.result() if answer.done() else await asyncio.wrap_future(answer)
        self.metrics.count_predictions(probabilities.argmax(keepdims=True))
        return self._prediction(probabilities, digit if include_image else None)

    def _preprocess_and_submit(self, data: bytes) -> tuple[np.ndarray, Future]:
        digit = preprocess(data, self.max_pixels)
        return digit, self.batcher.submit(digit)

    async def predict_many(self, uploads: list[tuple[str | None, bytes]], include_image: bool = False) -> list[BatchItem]:
        """Classify several uploads in one model call; a bad file gets its own error entry."""
        loop = asyncio.get_running_loop()
        # Every core preprocesses its share of the files; the model then takes them in one call.
        outcomes = await asyncio.gather(*(loop.run_in_executor(self.preprocess_pool, self._preprocess_or_error, data) for _, data in uploads))
        return await run_in_threadpool(self._predict_many, uploads, outcomes, include_image)

    async def explain_bytes(self, data: bytes, method: Method) -> ExplainedPrediction:
        """Classify one upload and explain the answer with a heatmap."""
        return await run_in_threadpool(self._explain_bytes, data, method)

    def close(self) -> None:
        """Let queued preprocessing and model calls finish, then stop the threads."""
        self.preprocess_pool.shutdown(wait=True)
        self.batcher.close()

    def predict_arrays(self, images: np.ndarray) -> np.ndarray:
        """Probabilities for already-preprocessed (N, 28, 28) images (the protocol endpoints)."""
        probabilities = self.classifier.predict(images)
        self.metrics.count_predictions(probabilities.argmax(axis=1))
        return probabilities

    @property
    def explainer(self) -> Explainer:
        """The explainer, built on the first /explain so that plain predictions never pay for it."""
        with self._explainer_lock:
            if self._explainer is None:
                try:
                    self._explainer = Explainer(self.classifier.model)
                except ModelLoadError as error:
                    raise RequestError(f"Explanations are unavailable: {error}", 503) from None
            return self._explainer

    def _explain_bytes(self, data: bytes, method: Method) -> ExplainedPrediction:
        digit_image = preprocess(data, self.max_pixels)
        prediction = self._prediction(self.predict_arrays(digit_image[np.newaxis])[0], digit_image)
        explained_digit, heat = self.explainer.explain(digit_image, method, digit=prediction.digit)
        overlay = "data:image/png;base64," + base64.b64encode(overlay_png(digit_image, heat)).decode("ascii")
        explanation = Explanation(method=method, digit=explained_digit, heatmap=heat.round(4).tolist(), overlay=overlay)
        return ExplainedPrediction(**prediction.model_dump(), explanation=explanation)

    def _preprocess_or_error(self, data: bytes) -> np.ndarray | BatchError:
        try:
            return preprocess(data, self.max_pixels)
        except PreprocessError as error:
            status, detail = preprocess_answer(error)
            return BatchError(status=status, detail=detail)

    def _predict_many(self, uploads, outcomes: list[np.ndarray | BatchError], include_image: bool) -> list[BatchItem]:
        digits = {index: outcome for index, outcome in enumerate(outcomes) if isinstance(outcome, np.ndarray)}
        probabilities = self.predict_arrays(np.stack(list(digits.values()))) if digits else []
        by_index = dict(zip(digits, probabilities, strict=True))
        items = []
        for index, ((name, _), outcome) in enumerate(zip(uploads, outcomes, strict=True)):
            if isinstance(outcome, BatchError):
                items.append(BatchItem(filename=name, error=outcome))
            else:
                image = outcome if include_image else None
                items.append(BatchItem(filename=name, prediction=self._prediction(by_index[index], image)))
        return items

    def _prediction(self, probabilities: np.ndarray, digit_image: np.ndarray | None) -> Prediction:
        probabilities = probabilities.astype(np.float64)
        probabilities = probabilities / probabilities.sum()
        best = int(probabilities.argmax())
        # Built from values that are valid by construction, so pydantic's validation is skipped.
        return Prediction.model_construct(
            digit=best,
            confidence=float(probabilities[best]),
            probabilities=probabilities.tolist(),
            model=self.model_info,
            input_image=png_data_url(digit_image) if digit_image is not None else None,
        )


def png_data_url(digit: np.ndarray) -> str:
    """A (28, 28) float image as a PNG data URL."""
    return "data:image/png;base64," + base64.b64encode(to_png(digit)).decode("ascii")
