"""The loaded model behind a small interface: load once, check it, predict probabilities."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

INPUT_SHAPE = (28, 28)
NUM_CLASSES = 10


class ModelLoadError(Exception):
    """The model file is missing, unreadable, unsafe or of the wrong shape."""


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_card_digest(path: Path, digest: str) -> None:
    """Refuse a model whose bytes differ from the sha256 its card (card.json beside it) records."""
    card_path = path.parent / "card.json"
    if not digest or not card_path.is_file():
        return
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError):
        return
    # A card describes one file; a different model beside it is not held to that card.
    if card.get("model_file") == path.name and card.get("model_sha256") not in (None, digest):
        raise ModelLoadError(f"model file {path} does not match the sha256 recorded in {card_path}: it was altered or damaged")


def load_keras_model(path: str | Path):
    """Load a .keras file in safe mode and check it maps (N, 28, 28) images to 10 probabilities."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    import keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many kinds for bad archives; all mean the same here.
        reason = str(error).splitlines()[0][:200] if str(error) else error.__class__.__name__
        raise ModelLoadError(f"model file {path} could not be loaded as a Keras model: {reason}") from None
    input_shape = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    output_shape = tuple(model.output_shape[1:]) if not isinstance(model.output_shape, list) else None
    if input_shape not in (INPUT_SHAPE, (*INPUT_SHAPE, 1), (INPUT_SHAPE[0] * INPUT_SHAPE[1],)):
        raise ModelLoadError(f"model file {path} expects inputs of shape {model.input_shape}, not 28x28 images")
    if output_shape != (NUM_CLASSES,):
        raise ModelLoadError(f"model file {path} outputs shape {model.output_shape}, not 10 class probabilities")
    return model


def set_compute_threads(threads: int) -> bool:
    """Ask TensorFlow to run each op on `threads` threads; False when it has already started.

    One thread suits a service: a tiny network's ops finish faster inline than when they are
    split across a thread pool, and the other cores are busy decoding and preprocessing.
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow's runtime is already initialised in this process.
        return False
    return True


class Classifier:
    """A loaded Keras model with a compiled, fixed-signature call: probabilities for a batch."""

    def __init__(self, model, name: str, version: str):
        import tensorflow as tf

        self.model = model
        self.name = name
        self.version = version
        target_shape = model.input_shape[1:]

        # One traced graph for any batch size; model.predict per request costs ~100x more.
        @tf.function(input_signature=[tf.TensorSpec([None, *INPUT_SHAPE], tf.float32)], reduce_retracing=True)
        def call(images):
            # The model may take (28, 28), (28, 28, 1) or 784 values per image.
            return model(tf.reshape(images, [-1, *target_shape]), training=False)

        self._call = call

    @classmethod
    def load(cls, path: str | Path, name: str = "digitserve") -> Classifier:
        """Load, check and warm up the model in `path`."""
        path = Path(path)
        digest = file_sha256(path) if path.is_file() else ""
        check_card_digest(path, digest)
        model = load_keras_model(path)
        classifier = cls(model, name=name, version=digest[:12])
        classifier.warm_up()
        return classifier

    def warm_up(self) -> None:
        """Trace and run the compiled call once so the first request is not slow."""
        for batch_size in (1, 8):
            self.predict(np.zeros((batch_size, *INPUT_SHAPE), dtype=np.float32))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) float32 in [0, 1] -> (N, 10) float32 probabilities."""
        images = np.asarray(images, dtype=np.float32).reshape(-1, *INPUT_SHAPE)
        return np.asarray(self._call(images), dtype=np.float32)

    @staticmethod
    def device() -> str:
        """The device TensorFlow computes on: the GPU's name, or CPU."""
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return "CPU"
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU ({details.get('device_name', gpus[0].name)})"
