"""The model call behind the service: the Keras model compiled by TensorFlow, or a LiteRT copy of it.

The Keras model stays the source of truth (explanations need its gradients). LiteRT runs the
same network through XNNPACK at about an eighth of the per-call cost of a `tf.function` on a
small CPU, so it is the default; it is converted from the Keras model at start-up and refused
unless its outputs agree with the Keras model's to `AGREEMENT_TOLERANCE` on a probe batch
(`app/litert_cache.py` keeps the copy, with those outputs, for the next start).

Both answer, in one call, the 10 probabilities followed by the features the last layer reads:
the not-a-digit test (`app/calibration.py`) needs those features, and a second call would double the cost.
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
    """Computes (N, 10 + F) outputs, the probabilities then the last layer's F input features, for (N, 28, 28) float32 images."""

    def __call__(self, images: np.ndarray) -> np.ndarray: ...


def with_features(model):
    """The model as a Keras model from (N, 28, 28) images to its probabilities and then the features its last layer reads."""
    import keras

    from app.explain import logit_layer

    images = keras.Input(INPUT_SHAPE, name="image")
    inputs = images if tuple(model.input_shape[1:]) == INPUT_SHAPE else keras.layers.Reshape(model.input_shape[1:])(images)
    both = keras.Model(model.inputs, [model.output, logit_layer(model).input])
    probabilities, features = both(inputs)
    features = keras.layers.Flatten()(features)
    return keras.Model(images, keras.layers.Concatenate(name="probabilities_and_features")([probabilities, features]))


class KerasRuntime:
    """The Keras model as one traced TensorFlow graph, for any batch size."""

    def __init__(self, model):
        import tensorflow as tf

        model = with_features(model)

        # One traced graph with a fixed signature; model.predict per request costs ~100x more.
        @tf.function(input_signature=[tf.TensorSpec([None, *INPUT_SHAPE], tf.float32)], reduce_retracing=True)
        def call(images):
            return model(images, training=False)

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
        output = self._interpreter.get_output_details()[0]
        self._output = output["index"]
        self.output_width = int(output["shape"][-1])
        self._batch_size = 0
        # The interpreter holds one set of buffers: calls from several threads take turns.
        self._lock = threading.Lock()

    @classmethod
    def from_keras(cls, model, threads: int = 1) -> LiteRTRuntime:
        """Convert a Keras model (any input layout) to a LiteRT runtime taking (N, 28, 28) images."""
        import tensorflow as tf

        model = with_features(model)
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
    """The largest difference from the Keras model's outputs on the probe batch, relative above 1; raises over `tolerance`."""
    images = probe_images()

    def difference(outputs: np.ndarray, expected: np.ndarray) -> float:
        if outputs.shape != expected.shape:
            raise RuntimeMismatch(f"the LiteRT copy answers {outputs.shape[1:]} values an image, the Keras model {expected.shape[1:]}")
        # Features run to tens, where float32 rounding alone exceeds an absolute tolerance.
        return float(np.max(np.abs(outputs - expected) / np.maximum(1.0, np.abs(expected))))

    # Batch size 1 takes other kernels in some runtimes, so it is checked on its own as well.
    largest = max(difference(runtime(images), reference), difference(runtime(images[2:3]), reference[2:3]))
    if not largest <= tolerance:
        raise RuntimeMismatch(f"the LiteRT copy's outputs differ from the Keras model's by {largest:.2e} (limit {tolerance:.0e})")
    return largest
