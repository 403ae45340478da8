"""The model call behind the service: the Keras model compiled by TensorFlow, or a LiteRT copy of it.

The Keras model stays the source of truth (explanations need its gradients). LiteRT runs the
same network through XNNPACK at about an eighth of the per-call cost of a `tf.function` on a
small CPU, so it is the default; it is converted from the Keras model at start-up and refused
unless its outputs agree with the Keras model's to `AGREEMENT_TOLERANCE` on a probe batch
(`app/litert_cache.py` keeps the copy, with those outputs, for the next start).
"""

from __future__ import annotations

import contextlib
import io
import threading
from typing import Literal, Protocol

import numpy as np

INPUT_SHAPE = (28, 28)
Backend = Literal["litert", "keras"]
AGREEMENT_TOLERANCE = 1e-5
PROBE_BATCH = 16


class RuntimeMismatch(Exception):
    """A converted model's outputs differ from the Keras model's."""


class Runtime(Protocol):
    """Computes (N, 10) probabilities for (N, 28, 28) float32 images."""

    def __call__(self, images: np.ndarray) -> np.ndarray: ...


class KerasRuntime:
    """The Keras model as one traced TensorFlow graph, for any batch size."""

    def __init__(self, model):
        import tensorflow as tf

        target_shape = model.input_shape[1:]

        # One traced graph with a fixed signature; model.predict per request costs ~100x more.
        @tf.function(input_signature=[tf.TensorSpec([None, *INPUT_SHAPE], tf.float32)], reduce_retracing=True)
        def call(images):
            # The model may take (28, 28), (28, 28, 1) or 784 values per image.
            return model(tf.reshape(images, [-1, *target_shape]), training=False)

        self._call = call

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self._call(images), dtype=np.float32)


class LiteRTRuntime:
    """A LiteRT (TensorFlow Lite) flatbuffer run by the LiteRT interpreter on `threads` threads (0: its choice)."""

    def __init__(self, flatbuffer: bytes, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.flatbuffer = flatbuffer
        self._interpreter = Interpreter(model_content=flatbuffer, num_threads=threads if threads > 0 else None)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch_size = 0
        # The interpreter holds one set of buffers: calls from several threads take turns.
        self._lock = threading.Lock()

    @classmethod
    def from_keras(cls, model, threads: int = 1) -> LiteRTRuntime:
        """Convert a Keras model (any input layout) to a LiteRT runtime taking (N, 28, 28) images."""
        import keras
        import tensorflow as tf

        if tuple(model.input_shape[1:]) != INPUT_SHAPE:
            images = keras.Input(INPUT_SHAPE, name="image")
            model = keras.Model(images, model(keras.layers.Reshape(model.input_shape[1:])(images)))
        # The converter narrates its temporary SavedModel on stdout; the service's output is its log.
        with contextlib.redirect_stdout(io.StringIO()):
            flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
        return cls(flatbuffer, threads)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.float32)
        with self._lock:
            if images.shape[0] != self._batch_size:
                self._interpreter.resize_tensor_input(self._input, images.shape)
                self._interpreter.allocate_tensors()
                self._batch_size = images.shape[0]
            self._interpreter.set_tensor(self._input, images)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output).copy()


def probe_images() -> np.ndarray:
    """A fixed batch that exercises the whole input range: blank, full, and random images."""
    random = np.random.default_rng(0).random((PROBE_BATCH - 2, *INPUT_SHAPE), dtype=np.float32)
    return np.concatenate([np.zeros((1, *INPUT_SHAPE), np.float32), np.ones((1, *INPUT_SHAPE), np.float32), random])


def check_against(runtime: Runtime, reference: np.ndarray, tolerance: float = AGREEMENT_TOLERANCE) -> float:
    """The largest difference from the Keras model's probabilities on the probe batch; raises over `tolerance`."""
    images = probe_images()
    difference = float(np.max(np.abs(runtime(images) - reference)))
    # Batch size 1 takes other kernels in some runtimes, so it is checked on its own as well.
    difference = max(difference, float(np.max(np.abs(runtime(images[2:3]) - reference[2:3]))))
    if not difference <= tolerance:
        raise RuntimeMismatch(f"the LiteRT copy's probabilities differ from the Keras model's by {difference:.2e} (limit {tolerance:.0e})")
    return difference
