"""The model call: the LiteRT copy agrees with the Keras model, and its cache is trusted only when it should be."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.classifier import Classifier, file_sha256, load_keras_model
from app.litert_cache import LiteRTCopy, read_copy, write_copy
from app.main import create_app
from app.runtimes import KerasRuntime, LiteRTRuntime, RuntimeMismatch, check_against, probe_images
from training.architecture import build_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def keras_model(shipped_model_path):
    return load_keras_model(shipped_model_path)


@pytest.fixture(scope="module")
def litert(keras_model):
    return LiteRTRuntime.from_keras(keras_model)


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_litert_copy_matches_keras_on_mnist_digits(keras_model, litert, mnist, batch_size):
    images = mnist.x_test[100 : 100 + batch_size].astype(np.float32) / 255.0
    expected = KerasRuntime(keras_model)(images)
    np.testing.assert_allclose(litert(images), expected, atol=1e-5)
    assert (litert(images).argmax(axis=1) == expected.argmax(axis=1)).all()


def test_a_copy_of_another_model_fails_the_agreement_check(keras_model):
    other = LiteRTRuntime.from_keras(build_model("digitnet"))
    with pytest.raises(RuntimeMismatch, match="differ from the Keras model's"):
        check_against(other, KerasRuntime(keras_model)(probe_images()))


def test_first_load_caches_the_copy_and_the_next_serves_from_it(shipped_model_path, tmp_path):
    first = Classifier.load(shipped_model_path, cache_dir=tmp_path)
    digest = file_sha256(shipped_model_path)
    cached = read_copy(tmp_path, digest)
    assert cached is not None and cached.reference.shape == (len(probe_images()), 10 + 256)
    written = (tmp_path / f"{digest}.tflite").stat().st_mtime_ns

    second = Classifier.load(shipped_model_path, cache_dir=tmp_path, keras_in_background=True)
    images = probe_images()
    np.testing.assert_allclose(second.predict(images), first.predict(images), atol=1e-6)
    assert second.model.count_params() == first.model.count_params()  # waits for the background load
    assert second.backend == "litert"
    assert (tmp_path / f"{digest}.tflite").stat().st_mtime_ns == written


def test_a_damaged_cached_copy_is_ignored_and_rebuilt(shipped_model_path, tmp_path, caplog):
    Classifier.load(shipped_model_path, cache_dir=tmp_path)
    digest = file_sha256(shipped_model_path)
    flatbuffer_path = tmp_path / f"{digest}.tflite"
    damaged = bytearray(flatbuffer_path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    flatbuffer_path.write_bytes(bytes(damaged))
    with caplog.at_level(logging.WARNING, logger="digitserve"):
        assert read_copy(tmp_path, digest) is None
    assert "damaged or outdated" in caplog.text
    classifier = Classifier.load(shipped_model_path, cache_dir=tmp_path)
    assert read_copy(tmp_path, digest) is not None
    assert classifier.predict(probe_images()).shape == (len(probe_images()), 10)


def test_a_wrong_copy_under_the_model_s_name_is_caught_against_keras(shipped_model_path, tmp_path, caplog):
    # A copy of another network, filed under the shipped model's sha256 with that network's own
    # outputs: it passes the quick check at start-up, so the Keras model must catch it.
    other = build_model("digitnet")
    impostor = LiteRTRuntime.from_keras(other)
    digest = file_sha256(shipped_model_path)
    write_copy(tmp_path, digest, LiteRTCopy(impostor.flatbuffer, KerasRuntime(other)(probe_images())))
    with caplog.at_level(logging.ERROR, logger="digitserve"):
        classifier = Classifier.load(shipped_model_path, cache_dir=tmp_path, keras_in_background=True)
        with TestClient(create_app(classifier=classifier)) as client:
            classifier.model  # noqa: B018 (waits for the background check)
            metrics = client.get("/metrics").text
    assert classifier.backend == "keras"
    assert "disagrees" in caplog.text
    assert 'backend="keras"' in metrics and 'backend="litert"' not in metrics, "the metric follows the switch"
    images = probe_images()
    np.testing.assert_allclose(classifier.outputs(images), KerasRuntime(classifier.model)(images), atol=1e-6)


def test_an_unwritable_cache_only_costs_the_next_start(shipped_model_path, tmp_path, caplog):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    with caplog.at_level(logging.WARNING, logger="digitserve"):
        classifier = Classifier.load(shipped_model_path, cache_dir=blocked / "cache")
    assert "cannot cache the LiteRT copy" in caplog.text
    assert classifier.backend == "litert"


def test_keras_backend_serves_tensorflow_s_own_call(shipped_model_path, tmp_path, keras_model):
    classifier = Classifier.load(shipped_model_path, backend="keras", cache_dir=tmp_path)
    assert classifier.backend == "keras" and not list(tmp_path.iterdir())
    images = probe_images()
    np.testing.assert_allclose(classifier.outputs(images), KerasRuntime(keras_model)(images), atol=1e-6)


def test_check_command_caches_the_copy_and_reports_success(shipped_model_path, tmp_path):
    env = {**os.environ, "DIGITSERVE_CACHE_DIR": str(tmp_path), "DIGITSERVE_MODEL_PATH": str(shipped_model_path)}
    result = subprocess.run([sys.executable, "-m", "app", "--check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / f"{file_sha256(shipped_model_path)}.json").read_text())
    assert record["model_sha256"] == file_sha256(shipped_model_path)


def test_the_service_reports_its_backend(settings):
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings.model_copy(update={"backend": "keras"}))) as client:
        assert 'backend="keras"' in client.get("/metrics").text


def test_explanations_answer_503_when_the_keras_model_cannot_load(shipped_model_path, tmp_path, settings):
    from fastapi.testclient import TestClient

    Classifier.load(shipped_model_path, cache_dir=tmp_path)
    copy = read_copy(tmp_path, file_sha256(shipped_model_path))
    classifier = Classifier(LiteRTRuntime(copy.flatbuffer), "digitserve", "test", "litert")
    classifier._load_keras(tmp_path / "gone.keras")  # what the background loader meets when the file vanished
    upload = {"file": ("digit.png", (ROOT / "tests" / "data" / "digit.png").read_bytes(), "image/png")}
    with TestClient(create_app(settings, classifier=classifier)) as client:
        assert client.post("/predict", files=upload).status_code == 200
        response = client.post("/explain", files=upload)
    assert response.status_code == 503
    assert response.json()["detail"].startswith("Explanations are unavailable: model file") and "does not exist" in response.json()["detail"]


def test_a_cached_copy_whose_features_do_not_fit_the_calibration_is_rebuilt(shipped_model_path, tmp_path, caplog):
    other = build_model("lenet")  # 500 features where the shipped network has 256
    write_copy(tmp_path, file_sha256(shipped_model_path), LiteRTCopy(LiteRTRuntime.from_keras(other).flatbuffer, KerasRuntime(other)(probe_images())))
    with caplog.at_level(logging.WARNING, logger="digitserve"):
        classifier = Classifier.load(shipped_model_path, cache_dir=tmp_path)
    if classifier.calibration is None:
        pytest.skip("the shipped model has no calibration")
    assert "do not fit the model's calibration" in caplog.text and classifier.backend == "litert"
    images = probe_images()
    np.testing.assert_allclose(classifier.outputs(images), KerasRuntime(classifier.model)(images), atol=1e-5)
