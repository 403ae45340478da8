"""The loaded model behind a small interface: load once, check it, predict probabilities."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from app.calibration import Calibration, CalibrationError, load_calibration
from app.explain import LOGIT_LAYER_NEEDED, logit_layer
from app.litert_cache import LiteRTCopy, read_copy, write_copy
from app.runtimes import INPUT_SHAPE, Backend, KerasRuntime, LiteRTRuntime, Runtime, RuntimeMismatch, check_against, probe_images

logger = logging.getLogger("digitserve")

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


def model_card(path: Path) -> dict:
    """The card (card.json beside the model) when it describes this model file, else {}."""
    card_path = path.parent / "card.json"
    try:
        card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    except (OSError, ValueError):
        return {}
    # A card describes one file; a different model beside it is not held to that card.
    return card if isinstance(card, dict) and card.get("model_file") == path.name else {}


def check_card_digest(path: Path, digest: str) -> None:
    """Refuse a model whose bytes differ from the sha256 its card (card.json beside it) records."""
    if digest and model_card(path).get("model_sha256") not in (None, digest):
        raise ModelLoadError(f"model file {path} does not match the sha256 recorded in {path.parent / 'card.json'}: it was altered or damaged")


def model_calibration(path: Path) -> Calibration | None:
    """The calibration shipped beside the model, checked against its card; None for a model without one."""
    recorded = model_card(path).get("calibration", {}).get("sha256")
    try:
        return load_calibration(path, recorded)
    except CalibrationError as error:
        raise ModelLoadError(str(error)) from None


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
    # Every endpoint must be able to use the model, /explain included: refused here, not with a 500 later.
    if logit_layer(model) is None:
        raise ModelLoadError(f"model file {path} cannot be explained: {LOGIT_LAYER_NEEDED}")
    return model


def model_digest(path: Path) -> str:
    """The sha256 of the model file ("" when there is none), refused when it differs from the one its card records."""
    digest = file_sha256(path) if path.is_file() else ""
    check_card_digest(path, digest)
    return digest


def cached_runtime(digest: str, backend: Backend, cache_dir: Path | None, threads: int = 1) -> LiteRTRuntime | None:
    """The cached LiteRT copy of the model with this sha256, checked and ready to serve, or None."""
    if backend != "litert" or not cache_dir or not digest:
        return None
    copy = read_copy(cache_dir, digest)
    return checked_runtime(copy, threads) if copy is not None else None


class Classifier:
    """The served model: a compiled call for predictions, and the Keras model for explanations.

    With a cached LiteRT copy the classifier serves before TensorFlow is even imported; the Keras
    model (the source of truth) then loads in the background and the copy is checked against it
    once more, falling back to TensorFlow's call if they disagree.
    """

    def __init__(self, call: Runtime, name: str, version: str, backend: Backend, model=None, calibration: Calibration | None = None):
        self._call = call
        self.calibration = calibration
        self.name = name
        self.version = version
        self.backend = backend
        self._model = model
        self._model_error: ModelLoadError | None = None
        self._model_loaded = threading.Event()
        self._on_model_loaded: list[Callable[[], None]] = []
        self._on_model_loaded_lock = threading.Lock()
        if model is not None:
            self._model_loaded.set()

    @classmethod
    def load(
        cls,
        path: str | Path,
        name: str = "digitserve",
        backend: Backend = "litert",
        threads: int = 1,
        cache_dir: Path | None = None,
        keras_in_background: bool = False,
    ) -> Classifier:
        """Load, check and warm up the model in `path`, served by `backend` (LiteRT on `threads` threads).

        A LiteRT copy is read from and written to `cache_dir` when one is given; with
        `keras_in_background`, a cached copy serves at once while the Keras model loads.
        """
        path = Path(path)
        digest = model_digest(path)
        calibration = model_calibration(path)
        runtime = cached_runtime(digest, backend, cache_dir, threads)
        if runtime is not None and calibration is not None and runtime.output_width != NUM_CLASSES + calibration.feature_count:
            logger.warning("the cached LiteRT copy is not used: its features do not fit the model's calibration")
            runtime = None
        if runtime is not None:
            classifier = cls._from_copy(runtime, path, name, digest, keras_in_background)
        else:
            classifier = cls._from_keras(path, name, digest, backend, threads, cache_dir)
        classifier.calibration = calibration
        classifier.warm_up()
        return classifier

    @classmethod
    def _from_copy(cls, runtime: LiteRTRuntime, path: Path, name: str, digest: str, keras_in_background: bool) -> Classifier:
        """Serve a checked LiteRT copy at once; the Keras model behind it loads now or in the background."""
        classifier = cls(runtime, name, digest[:12], "litert")
        if keras_in_background:
            threading.Thread(target=classifier._load_keras, args=(path,), name="keras-loader", daemon=True).start()
        else:
            classifier._load_keras(path)
            classifier.model  # noqa: B018 (raises the reason when the Keras model failed to load)
        return classifier

    @classmethod
    def _from_keras(cls, path: Path, name: str, digest: str, backend: Backend, threads: int, cache_dir: Path | None) -> Classifier:
        """Load the Keras model and build the backend's call from it, caching a LiteRT copy."""
        model = load_keras_model(path)
        keras_runtime = KerasRuntime(model)
        if backend == "keras":
            return cls(keras_runtime, name, digest[:12], backend, model=model)
        runtime = LiteRTRuntime.from_keras(model, threads)
        reference = keras_runtime(probe_images())
        try:
            check_against(runtime, reference)
        except RuntimeMismatch as error:
            raise ModelLoadError(f"the litert backend cannot serve {path}: {error}; set DIGITSERVE_BACKEND=keras") from None
        if cache_dir and digest:
            write_copy(cache_dir, digest, LiteRTCopy(runtime.flatbuffer, reference))
        return cls(runtime, name, digest[:12], backend, model=model)

    @property
    def model(self):
        """The Keras model; waits while it is still loading in the background."""
        self._model_loaded.wait()
        if self._model_error is not None:
            raise self._model_error
        return self._model

    def when_model_loaded(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the Keras model has loaded or failed to; at once if it already has."""
        with self._on_model_loaded_lock:
            if not self._model_loaded.is_set():
                self._on_model_loaded.append(callback)
                return
        callback()

    def _load_keras(self, path: Path) -> None:
        """Load the Keras model behind a cached copy and check the copy against it once more."""
        try:
            model = load_keras_model(path)
            keras_runtime = KerasRuntime(model)
            try:
                check_against(self._call, keras_runtime(probe_images()))
            except RuntimeMismatch as error:
                logger.error("the cached LiteRT copy disagrees with %s (%s): serving with keras instead", path, error)
                self._call, self.backend = keras_runtime, "keras"
            self._model = model
        except ModelLoadError as error:
            logger.error("the Keras model behind the cached copy cannot be loaded: %s", error)
            self._model_error = error
        finally:
            with self._on_model_loaded_lock:
                self._model_loaded.set()
                callbacks, self._on_model_loaded = self._on_model_loaded, []
            for callback in callbacks:
                callback()

    def warm_up(self) -> None:
        """Run the compiled call once for each common batch size so the first requests are not slow."""
        for batch_size in (1, 8):
            self.predict(np.zeros((batch_size, *INPUT_SHAPE), dtype=np.float32))

    def outputs(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) float32 in [0, 1] -> (N, 10 + F): the uncalibrated probabilities, then the features the last layer reads."""
        return self._call(np.asarray(images, dtype=np.float32).reshape(-1, *INPUT_SHAPE))

    def read(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 28, 28) float32 in [0, 1] -> (N, 10) probabilities and (N,) is-a-digit verdicts, both from the shipped calibration.

        A model without a calibration answers its own softmax and calls everything a digit.
        """
        probabilities, margins = self.read_margins(images)
        return probabilities, margins <= 0

    def read_margins(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As `read`, with each image's not-a-digit score less the threshold instead of the verdict: above 0 is "not a digit".

        A model without a calibration gives every image -inf.
        """
        outputs = self.outputs(images)
        probabilities, features = outputs[:, :NUM_CLASSES], outputs[:, NUM_CLASSES:]
        if self.calibration is None:
            return probabilities, np.full(len(outputs), -np.inf)
        return self.calibration.probabilities(probabilities), self.calibration.not_digit_margin(features)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) float32 in [0, 1] -> (N, 10) float32 probabilities, calibrated when the model ships a calibration."""
        return self.read(images)[0]

    def device(self) -> str:
        """Where the model call runs: the GPU's name, or CPU."""
        gpu = gpu_name() if self.backend == "keras" else None
        return f"GPU ({gpu})" if gpu else "CPU"


def checked_runtime(copy: LiteRTCopy, threads: int = 1) -> LiteRTRuntime | None:
    """The cached copy ready to serve, or None (with a warning) when it no longer reproduces the Keras model."""
    try:
        runtime = LiteRTRuntime(copy.flatbuffer, threads)
        check_against(runtime, copy.reference)
    except (RuntimeMismatch, ValueError, RuntimeError) as error:  # The interpreter rejects a malformed flatbuffer.
        logger.warning("the cached LiteRT copy is not used: %s", error)
        return None
    return runtime


def gpu_name() -> str | None:
    """The first GPU TensorFlow sees, or None."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
