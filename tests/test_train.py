"""Training end to end on a subset: saves a loadable model, repeats exactly with the same seed, mixes in scene images,
keeps the best validation epoch and draws the plots a network's layers allow."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.classifier import Classifier
from training import train
from training.scene_data import SceneSet

SMOKE = ["--limit", "2000", "--epochs", "1", "--batch-size", "32", "--no-plots", "--no-calibration"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, mnist):
    out = tmp_path_factory.mktemp("smoke")
    assert train.main([*SMOKE, "--data", _data_arg(mnist), "--out", str(out)]) == 0
    return out


def _data_arg(mnist) -> str:
    # The fixture's source is the file path, or Keras' download (then the env var is unset).
    return mnist.source if mnist.source != "keras.datasets.mnist" else ""


def test_smoke_run_saves_a_loadable_model_over_80_percent(smoke_run):
    card = json.loads((smoke_run / "card.json").read_text())
    assert card["test"]["accuracy"] > 0.80
    assert (smoke_run / "README.md").is_file()
    classifier = Classifier.load(smoke_run / "digitserve.keras")
    assert classifier.predict(np.zeros((2, 28, 28), "float32")).shape == (2, 10)


def test_same_seed_gives_the_same_accuracy(smoke_run, tmp_path, mnist):
    assert train.main([*SMOKE, "--data", _data_arg(mnist), "--out", str(tmp_path)]) == 0
    first = json.loads((smoke_run / "card.json").read_text())
    second = json.loads((tmp_path / "card.json").read_text())
    assert round(first["test"]["accuracy"], 3) == round(second["test"]["accuracy"], 3)
    assert first["history"]["loss"] == second["history"]["loss"]


def test_limit_run_refuses_to_overwrite_the_shipped_model(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--limit", "100"])
    assert "would overwrite the shipped model" in capsys.readouterr().err


def test_bad_data_path_is_one_sentence_and_exit_2(tmp_path, capsys):
    assert train.main(["--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: MNIST data not found at") and "\n" not in error


SCENE_SMOKE = ["--limit", "600", "--scenes", "120", "--epochs", "1", "--batch-size", "32", "--no-plots", "--no-calibration"]


@pytest.fixture(scope="module")
def scene_smoke_run(tmp_path_factory, mnist):
    out, cache = tmp_path_factory.mktemp("scene-smoke"), tmp_path_factory.mktemp("scene-cache")
    assert train.main([*SCENE_SMOKE, "--data", _data_arg(mnist), "--out", str(out), "--scene-cache", str(cache)]) == 0
    return out


def test_scene_smoke_run_records_the_scenes_in_the_card(scene_smoke_run):
    card = json.loads((scene_smoke_run / "card.json").read_text())
    training, scenes = card["training"], card["scenes"]["training"]
    assert scenes["images"] + sum(scenes["refused_per_kind"].values()) == 120
    assert set(scenes["per_kind"]) == set(scenes["refused_per_kind"]) and len(scenes["per_kind"]) == 25
    assert training["scene_images"] == scenes["images"] and training["train_images"] == training["clean_images"] + scenes["images"]
    assert training["clean_images"] == 570 and training["validation_images"] == 30
    assert card["scenes"]["validation"]["images"] + sum(card["scenes"]["validation"]["refused_per_kind"].values()) == 30
    assert 0.0 <= card["scene_validation_accuracy"] <= 1.0 and len(card["history"]["scene_val_accuracy"]) == 1
    assert {"data_seconds", "fit_seconds", "seconds_per_epoch"} <= set(training) and scenes["render_seconds"] > 0
    readme = (scene_smoke_run / "README.md").read_text()
    assert "### Scene images" in readme and "| sticky_note |" in readme and "--scenes 120" in readme


@pytest.mark.parametrize(
    ("argv", "scenes", "epochs"),
    [
        ([], 0, 18),
        (["--scenes", "0"], 0, 18),
        (["--scenes", "500", "--epochs", "3"], 500, 3),
        (["--limit", "100"], 0, 18),
        (["--arch", "lenet", "--recipe", "tutorial"], 0, 20),
    ],
)
def test_scenes_are_asked_for(argv, scenes, epochs):
    args = train.parse_args([*argv, "--out", "x"])
    assert (args.scenes, args.recipe_settings.epochs) == (scenes, epochs)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scenes", "-1"], "--scenes must be 0 or more"),
        (["--scene-cache", str(train.REPOSITORY / "scene-cache")], "--scene-cache must be outside the repository"),
    ],
)
def test_bad_scene_options_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit):
        train.parse_args([*argv, "--out", "x"])
    assert message in capsys.readouterr().err


def test_only_training_digits_are_rendered_for_training(mnist, monkeypatch, tmp_path):
    rendered = {}

    def fake_render(digits, labels, count, seed, cache_dir=None, workers=None, name=""):
        rendered[name] = digits
        return SceneSet(np.zeros((count, 28, 28), np.float32), np.zeros(count, np.int64), np.full(count, "clean_png"), np.zeros(count), {}, 0.0)

    monkeypatch.setattr(train, "render_scenes", fake_render)
    args = train.parse_args(["--limit", "400", "--scenes", "50", "--out", str(tmp_path), "--scene-cache", str(tmp_path)])
    sets = train.prepare_data(mnist, args)
    training_digits = {digit.tobytes() for digit in rendered["training scenes"]}
    validation_digits = {digit.tobytes() for digit in rendered["validation scenes"]}
    assert len(training_digits) == 380 and len(validation_digits) == 20 and not training_digits & validation_digits
    # The validation set the epoch is chosen on stays clean MNIST.
    assert {(digit * 255).round().astype(np.uint8).tobytes() for digit in sets.validation[0]} == validation_digits
    assert sets.images.shape == (430, 28, 28) and sets.clean.sum() == 380 and not sets.clean[380:].any()


@pytest.mark.parametrize(
    ("validation_accuracies", "kept_epoch"),
    [
        ([0.90, 0.80, 0.85], 1),
        ([0.80, 0.90, 0.90], 2),
        ([0.70, 0.80, 0.90], 3),
        ([0.90] + [0.50] * 17, 1),
    ],
)
def test_the_best_validation_epoch_is_restored_and_training_never_stops_early(validation_accuracies, kept_epoch):
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    callback = train.keep_best_epoch_callback(len(validation_accuracies))
    callback.set_model(model)
    model.stop_training = False  # as fit() starts
    callback.on_train_begin()
    for epoch, accuracy in enumerate(validation_accuracies):
        # Each epoch's single weight is its number, so the restored weight names the kept epoch.
        model.set_weights([np.full((1, 1), epoch + 1.0)])
        callback.on_epoch_end(epoch, {"val_accuracy": accuracy, "val_loss": 1.0 - accuracy})
        assert not model.stop_training
    callback.on_train_end()
    assert model.get_weights()[0].item() == kept_epoch == callback.best_epoch + 1


@pytest.mark.parametrize(
    ("arch", "plots"),
    [
        ("softmax", {"training_curves", "confusion_matrix"}),
        pytest.param(
            "lenet",
            {"training_curves", "confusion_matrix", "first_layer_filters", "feature_maps_conv1", "feature_maps_conv2"},
            marks=pytest.mark.slow,
        ),
    ],
)
def test_plots_are_those_the_networks_layers_allow(arch, plots, tmp_path, mnist):
    command = [
        "--arch",
        arch,
        "--recipe",
        "tutorial",
        "--limit",
        "300",
        "--epochs",
        "1",
        "--no-calibration",
        "--data",
        _data_arg(mnist),
        "--out",
        str(tmp_path),
    ]
    assert train.main(command) == 0
    card = json.loads((tmp_path / "card.json").read_text())
    assert set(card["plots"]) == plots
    assert all((tmp_path / file).stat().st_size > 0 for file in card["plots"].values())
    assert ("![first layer filters](first_layer_filters.png)" in (tmp_path / "README.md").read_text()) == ("first_layer_filters" in plots)
