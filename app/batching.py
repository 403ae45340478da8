"""Micro-batching: concurrent single-image requests share one model call.

Like Triton's dynamic batcher or Ray Serve's `@serve.batch`, but run by the threads that
preprocess the uploads instead of a scheduler of its own. A thread that submits an image while
no model call is running makes the call itself, at once: a lone request waits for nothing and
hands nothing to another thread. Images submitted while a call runs queue up, and the thread
that is calling takes them all (up to `max_batch`) in its next call. `max_wait_ms` makes each
call wait that long for more images, trading latency for fuller batches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]


class MicroBatcher:
    """Gathers (28, 28) images from concurrent threads into (N, 28, 28) model calls, one at a time."""

    def __init__(self, predict: Predict, max_batch: int = 32, max_wait_ms: float = 0.0):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.predict_batch = predict
        self.max_batch = max_batch
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.batch_sizes: list[int] = []  # the sizes of recent batches, for tests and benchmarks
        self._pending: list[tuple[np.ndarray, Future]] = []
        self._arrived = threading.Condition()
        self._calling = False
        self._closed = False

    def submit(self, image: np.ndarray) -> Future:
        """Probabilities (10,) for one preprocessed image, as a future; done on return when this thread made the call."""
        future: Future = Future()
        with self._arrived:
            if self._closed:
                raise RuntimeError("the service is shutting down")
            self._pending.append((image, future))
            self._arrived.notify()
            if self._calling:
                return future
            self._calling = True
        self._call_while_pending()
        return future

    def close(self) -> None:
        """Refuse new images; those already queued are still answered."""
        with self._arrived:
            self._closed = True

    def _call_while_pending(self) -> None:
        while True:
            with self._arrived:
                if self.max_wait > 0:
                    deadline = time.monotonic() + self.max_wait
                    while len(self._pending) < self.max_batch and (remaining := deadline - time.monotonic()) > 0:
                        self._arrived.wait(remaining)
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                if not batch:
                    self._calling = False
                    return
                self.batch_sizes.append(len(batch))
                if len(self.batch_sizes) > 2000:
                    del self.batch_sizes[:1000]  # Trimmed in halves, so keeping it short costs nothing per batch.
            try:
                self._call(batch)
            except BaseException:
                with self._arrived:
                    self._calling = False  # Whoever submits next makes the calls.
                raise

    def _call(self, batch: list[tuple[np.ndarray, Future]]) -> None:
        try:
            probabilities = self.predict_batch(np.stack([image for image, _ in batch]))
        except Exception as error:  # One failed call fails its own requests, never the batcher.
            for _, future in batch:
                future.set_exception(error)
            return
        for (_, future), row in zip(batch, probabilities, strict=True):
            future.set_result(row)
