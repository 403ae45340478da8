"""Micro-batching: concurrent single-image requests share one model call.

Like Triton's dynamic batcher or Ray Serve's `@serve.batch`, but with no wait by default: a
request that finds the model idle runs at once, alone; requests that arrive while the model
is busy queue up and go together in the next call. `max_wait_ms` trades a little latency for
fuller batches when the arrival rate is high.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]


class MicroBatcher:
    """Gathers (28, 28) images from concurrent callers into (N, 28, 28) model calls, one at a time."""

    def __init__(self, predict: Predict, max_batch: int = 32, max_wait_ms: float = 0.0):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.predict_batch = predict
        self.max_batch = max_batch
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.batch_sizes: list[int] = []  # the sizes of recent batches, for tests
        self._queue: asyncio.Queue[tuple[np.ndarray, asyncio.Future]] | None = None
        self._worker: asyncio.Task | None = None
        # One thread for the model: calls never overlap, and the request thread pool stays free.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    async def start(self) -> None:
        """Start the batching loop on the running event loop."""
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        """Stop the loop; callers still waiting get an error rather than hanging."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        while self._queue is not None and not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the service is shutting down"))
        self._executor.shutdown(wait=True)

    async def predict(self, image: np.ndarray) -> np.ndarray:
        """Probabilities (10,) for one preprocessed (28, 28) image, computed in a shared batch."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((image, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        while queue is not None:
            batch = await self._gather(queue)
            live = [(image, future) for image, future in batch if not future.done()]
            if not live:
                continue
            self.batch_sizes.append(len(live))
            if len(self.batch_sizes) > 2000:
                del self.batch_sizes[:1000]  # Trimmed in halves, so keeping it short costs nothing per batch.
            images = np.stack([image for image, _ in live])
            try:
                probabilities = await loop.run_in_executor(self._executor, self.predict_batch, images)
            except Exception as error:  # One failed call fails its own requests, never the loop.
                for _, future in live:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), row in zip(live, probabilities, strict=True):
                if not future.done():
                    future.set_result(row)

    async def _gather(self, queue: asyncio.Queue) -> list[tuple[np.ndarray, asyncio.Future]]:
        """The next batch: the first waiting request, everything queued behind it, up to max_batch."""
        batch = [await queue.get()]
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while len(batch) < self.max_batch:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                break
        return batch
