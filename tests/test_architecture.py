"""Every network builds, maps (N, 28, 28) to 10 probabilities, has the expected size, trains and serves."""

from __future__ import annotations

import numpy as np
import pytest

from training.architecture import ARCHITECTURES, build_model

EXPECTED_PARAMETERS = {
    "digitnet": 825_738,
    "softmax": 7_850,
    "lenet": 431_080,
    "tf2-cnn": 93_322,
    "keras-cnn": 3_274_634,
}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_output_is_a_softmax_over_ten_digits(name):
    model = build_model(name)
    images = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    probabilities = np.asarray(model(images, training=False))
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (probabilities >= 0).all()


@pytest.mark.parametrize("name, parameters", sorted(EXPECTED_PARAMETERS.items()))
def test_tutorial_networks_have_their_published_sizes(name, parameters):
    assert build_model(name).count_params() == parameters


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="unknown architecture 'resnet'"):
        build_model("resnet")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_each_network_trains_saves_and_loads_in_the_service(name, tmp_path, mnist):
    """One epoch on 2,000 images with the network's own recipe, then the service's loader."""
    from app.classifier import Classifier
    from training import train

    recipe = "project" if name == "digitnet" else "tutorial"
    data = mnist.source if mnist.source != "keras.datasets.mnist" else ""
    command = ["--arch", name, "--recipe", recipe, "--limit", "2000", "--epochs", "1", "--no-plots", "--no-calibration"]
    command += ["--out", str(tmp_path), "--data", data]
    assert train.main(command) == 0
    classifier = Classifier.load(tmp_path / "digitserve.keras")
    assert classifier.model.count_params() == EXPECTED_PARAMETERS[name]
    probabilities = classifier.predict(mnist.x_test[:4].astype(np.float32) / 255.0)
    assert probabilities.shape == (4, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
