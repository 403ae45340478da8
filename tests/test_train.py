"""Training end to end on a subset: saves a loadable model, repeats exactly with the same seed."""

from __future__ import annotations

import json

import pytest

from app.classifier import Classifier
from training import train

SMOKE = ["--limit", "2000", "--epochs", "1", "--batch-size", "32", "--no-plots"]


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
    assert classifier.predict(__import__("numpy").zeros((2, 28, 28), "float32")).shape == (2, 10)


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
