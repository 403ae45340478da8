"""training/recipes.py and training/devices.py: which recipe and which devices a run uses."""

from __future__ import annotations

import pytest

from training import train
from training.devices import describe_strategy, training_strategy, use_mixed_precision
from training.recipes import PROJECT_RECIPE, TUTORIAL_RECIPES, recipe_for


@pytest.mark.parametrize(
    "arch, optimizer, learning_rate, batch_size, epochs",
    [
        ("softmax", "sgd", 0.5, 100, 2),
        ("lenet", "sgd", 0.01, 128, 20),
        ("tf2-cnn", "adam", 1e-3, 32, 5),
        ("keras-cnn", "adam", 1e-4, 50, 6),
    ],
)
def test_tutorial_recipes_are_the_tutorials_own(arch, optimizer, learning_rate, batch_size, epochs):
    recipe = recipe_for(arch, "tutorial")
    assert (recipe.optimizer, recipe.learning_rate, recipe.batch_size, recipe.epochs) == (optimizer, learning_rate, batch_size, epochs)
    assert not recipe.augment and recipe.schedule == "constant" and recipe.validation_fraction == 0
    assert 0.9 < recipe.published_accuracy < 1


def test_every_tutorial_network_has_a_recipe_and_digitnet_has_none():
    assert set(TUTORIAL_RECIPES) == {"softmax", "lenet", "tf2-cnn", "keras-cnn"}
    with pytest.raises(ValueError, match="digitnet has no tutorial recipe"):
        recipe_for("digitnet", "tutorial")
    assert recipe_for("lenet", "project") is PROJECT_RECIPE


def test_command_line_values_override_the_recipe():
    args = train.parse_args(["--arch", "lenet", "--recipe", "tutorial", "--epochs", "3", "--out", "x"])
    assert (args.recipe_settings.epochs, args.recipe_settings.batch_size, args.recipe_settings.optimizer) == (3, 128, "sgd")
    args = train.parse_args(["--no-augment", "--out", "x"])
    assert args.recipe_settings.epochs == PROJECT_RECIPE.epochs and not args.recipe_settings.augment


def test_tutorial_recipe_for_digitnet_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--recipe", "tutorial"])
    assert "digitnet has no tutorial recipe" in capsys.readouterr().err


def test_without_gpus_training_uses_one_device_and_float32(capsys):
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("this machine has GPUs: the CPU path is not the one taken")
    strategy = training_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert describe_strategy(strategy) == "one device: /device:CPU:0"
    assert use_mixed_precision(True) == "float32"
    assert "mixed precision needs a GPU" in capsys.readouterr().out
