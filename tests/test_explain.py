"""Explanations: heatmaps of shape 28x28 in [0, 1], repeatable, weighted on the ink, for every model the loader accepts."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.classifier import ModelLoadError, load_keras_model
from app.explain import METHODS, Explainer, overlay_png
from app.main import create_app
from app.preprocess import mnist_pixels_to_input
from tests.conftest import digit_png


@pytest.fixture(scope="module")
def explainer(shipped_model_path):
    return Explainer(load_keras_model(shipped_model_path))


@pytest.mark.parametrize("method", METHODS)
def test_heatmap_shape_range_and_repeatability(explainer, mnist, method):
    image = mnist_pixels_to_input(mnist.x_test[0])
    digit, heat = explainer.explain(image, method)
    assert digit == int(mnist.y_test[0])
    assert heat.shape == (28, 28) and heat.dtype == np.float32
    assert heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(heat, explainer.explain(image, method)[1])


@pytest.mark.parametrize("method", METHODS)
def test_heat_lies_on_the_ink(explainer, mnist, method):
    """Mean heat on ink pixels beats mean heat off the ink on at least 95 of 100 test digits."""
    wins = 0
    for index in range(100):
        image = mnist_pixels_to_input(mnist.x_test[index])
        _, heat = explainer.explain(image, method)
        ink = image > 0.2
        wins += heat[ink].mean() > heat[~ink].mean()
    assert wins >= 95, f"{method}: heat favoured the ink on {wins} of 100 digits"


def test_unknown_method_is_refused(explainer):
    with pytest.raises(ValueError, match="unknown explanation method"):
        explainer.explain(np.zeros((28, 28), np.float32), "magic")


def test_overlay_is_a_28x28_colour_png():
    image = Image.open(io.BytesIO(overlay_png(np.zeros((28, 28)), np.ones((28, 28)))))
    assert image.size == (28, 28) and image.mode == "RGB"


def test_explain_endpoint(client, mnist):
    data = digit_png(mnist.x_test[0])
    response = client.post("/explain?method=occlusion", files={"file": ("d.png", data, "image/png")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["digit"] == int(mnist.y_test[0])
    explanation = body["explanation"]
    assert explanation["method"] == "occlusion" and explanation["digit"] == body["digit"]
    assert np.asarray(explanation["heatmap"]).shape == (28, 28)
    overlay = base64.b64decode(explanation["overlay"].split(",", 1)[1])
    assert Image.open(io.BytesIO(overlay)).size == (28, 28)
    assert client.post("/explain", files={"file": ("d.png", data, "image/png")}).json()["explanation"]["method"] == "gradcam"


def test_explain_rejects_an_unknown_method_and_predict_stays_plain(client, mnist):
    data = digit_png(mnist.x_test[0])
    response = client.post("/explain?method=magic", files={"file": ("d.png", data, "image/png")})
    assert response.status_code == 422
    assert "method" in response.json()["detail"]
    assert "explanation" not in client.post("/predict", files={"file": ("d.png", data, "image/png")}).json()


def save_model(path, last_layers):
    """A small untrained convnet on 28x28 inputs that ends in `last_layers`, saved to `path`."""
    import keras

    inputs = keras.Input((28, 28))
    features = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, activation="relu")(keras.layers.Reshape((28, 28, 1))(inputs)))
    outputs = features
    for layer in last_layers():
        outputs = layer(outputs)
    keras.Model(inputs, outputs).save(path)
    return path


def test_a_model_ending_in_a_softmax_activation_layer_is_explained(settings, tmp_path, mnist):
    import keras

    path = save_model(tmp_path / "activation.keras", lambda: [keras.layers.Dense(10), keras.layers.Activation("softmax")])
    data = digit_png(mnist.x_test[0])
    with TestClient(create_app(settings.model_copy(update={"model_path": path, "cache_dir": tmp_path / "cache"}))) as client:
        for method in METHODS:
            response = client.post(f"/explain?method={method}", files={"file": ("d.png", data, "image/png")})
            assert response.status_code == 200, response.text
            assert np.asarray(response.json()["explanation"]["heatmap"]).shape == (28, 28)


def test_a_model_whose_scores_cannot_be_found_is_refused_at_load(tmp_path):
    import keras

    path = save_model(tmp_path / "relu.keras", lambda: [keras.layers.Dense(10, activation="relu")])
    with pytest.raises(ModelLoadError, match="cannot be explained: explanations need the model to end in a Dense layer"):
        load_keras_model(path)
