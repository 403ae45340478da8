"""The model card of a training run: card.json, a human README and the plots a person would rather look at.

python -m training.report --model model/digitserve.keras   # redraw plots and README from card.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.classifier import file_sha256
from training.machine import machine_description
from training.scene_data import summary

if TYPE_CHECKING:
    from training.data import MnistData
    from training.evaluate import Evaluation
    from training.train import Fitted, TrainingSets

MODEL_FILENAME = "digitserve.keras"
PREPROCESSING = {
    "input": "float32 array of shape (N, 28, 28), values in [0, 1]",
    "polarity": "white (1.0) digit on black (0.0) background",
    "recipe": "app/preprocess.py: EXIF orientation, alpha flattened, grayscale, impulse noise filtered, the sheet or note "
    "found and flattened, ink separated from paper and light whatever its polarity, printed lines, boxes and form cells' sides removed, "
    "the digit's strokes chosen among marks (with digits written beside it, so a number stays whole), "
    "thin lines drawn across it dropped, cropped to the ink, fitted to a 20x20 box keeping the aspect ratio "
    "(anti-aliased, strokes thinned without breaking), placed in 28x28 with its centre of mass at the centre",
}


def model_card(
    args: argparse.Namespace,
    model,
    evaluation: Evaluation,
    sets: TrainingSets,
    fitted: Fitted,
    data: MnistData,
    timings: dict,
    devices: str,
    dtype_policy: str,
) -> dict:
    """What card.json records of a finished training run (training.train's arguments, sets and fit)."""
    import keras
    import tensorflow as tf

    recipe = args.recipe_settings
    history = fitted.history
    scene_accuracy = history["scene_val_accuracy"][fitted.best_epoch - 1] if "scene_val_accuracy" in history else None
    return {
        "name": "digitserve",
        "architecture": args.arch,
        "model_file": MODEL_FILENAME,
        "parameters": int(model.count_params()),
        "test": evaluation.as_dict(),
        "validation_accuracy": round(fitted.validation_accuracy, 6) if fitted.validation_accuracy is not None else None,
        "scene_validation_accuracy": round(float(scene_accuracy), 6) if scene_accuracy is not None else None,
        "best_epoch": fitted.best_epoch,
        "training": {
            "recipe": args.recipe,
            "optimizer": recipe.optimizer,
            "schedule": recipe.schedule,
            "epochs": recipe.epochs,
            "batch_size": recipe.batch_size,
            "learning_rate": recipe.learning_rate,
            "validation_fraction": recipe.validation_fraction,
            "augmentation": recipe.augment,
            "seed": args.seed,
            "train_images": len(sets.images),
            "clean_images": int(sets.clean.sum()),
            "scene_images": int((~sets.clean).sum()),
            "validation_images": len(sets.validation[0]) if sets.validation else 0,
            # Preparing the data: loading MNIST and rendering the scenes, or reading them from the cache.
            "data_seconds": round(timings["data_seconds"], 1),
            "fit_seconds": round(timings["fit_seconds"], 1),
            "seconds_per_epoch": round(timings["fit_seconds"] / recipe.epochs, 1),
            "total_seconds": round(timings["total_seconds"], 1),
            "devices": devices,
            "dtype_policy": dtype_policy,
            "machine": machine_description(),
        },
        "scenes": {
            "training": summary(sets.scenes),
            "validation": summary(sets.scene_validation) if sets.scene_validation else None,
            "from_cache": sets.scenes.cached,
        }
        if sets.scenes
        else None,
        "data": {"source": Path(data.source).name, "sha256": data.sha256},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()},
        "history": {key: [round(float(value), 6) for value in values] for key, values in history.items()},
    }


def write_report(card: dict, model, data, out: Path, plots: bool = True) -> None:
    """Write card.json, README.md and (optionally) the plots into `out`."""
    card = dict(card)
    card["model_sha256"] = file_sha256(out / card["model_file"])
    card["preprocessing"] = PREPROCESSING
    card["plots"] = {}
    if plots:
        card["plots"] = {
            "training_curves": plot_training_curves(card["history"], out / "training_curves.png"),
            "confusion_matrix": plot_confusion_matrix(card["test"]["confusion_matrix"], out / "confusion_matrix.png"),
        }
        convolutions = convolution_layers(model)
        # A network without convolutions (softmax regression) has no filters or feature maps to draw.
        if convolutions:
            card["plots"]["first_layer_filters"] = plot_first_layer_filters(convolutions[0], out / "first_layer_filters.png")
            if data is not None:
                card["plots"].update(plot_feature_maps(model, convolutions, data.x_test, data.y_test, out))
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (out / "README.md").write_text(model_card_markdown(card))


def convolution_layers(model) -> list:
    """The model's Conv2D layers, first to last."""
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(history: dict, path: Path) -> str:
    """Training and validation loss and accuracy per epoch."""
    plt = _pyplot()
    epochs = np.arange(1, len(history["loss"]) + 1)
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, history["loss"], label="training")
    accuracy_axis.plot(epochs, history["accuracy"], label="training")
    if "val_loss" in history:
        loss_axis.plot(epochs, history["val_loss"], label="validation")
        accuracy_axis.plot(epochs, history["val_accuracy"], label="validation")
    if "test_accuracy" in history:
        accuracy_axis.plot(epochs, history["test_accuracy"], label="test (reported only)", linestyle="--")
    if "scene_val_accuracy" in history:
        accuracy_axis.plot(epochs, history["scene_val_accuracy"], label="scene validation (reported only)", linestyle=":")
    lowest = min(min(history[key]) for key in ("accuracy", "scene_val_accuracy") if key in history)
    loss_axis.set(title="Loss", xlabel="epoch", ylabel="cross-entropy", yscale="log")
    accuracy_axis.set(title="Accuracy", xlabel="epoch", ylabel="accuracy", ylim=(max(0.0, lowest - 0.01), 1.0))
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path.name


def plot_confusion_matrix(confusion: list[list[int]], path: Path) -> str:
    """The test-set confusion matrix, errors emphasised on a log colour scale."""
    from matplotlib.colors import LogNorm

    plt = _pyplot()
    matrix = np.asarray(confusion)
    figure, axis = plt.subplots(figsize=(6.5, 5.5))
    image = axis.imshow(matrix + 1, cmap="Blues", norm=LogNorm())
    for row in range(10):
        for col in range(10):
            count = matrix[row, col]
            if count:
                colour = "white" if row == col else ("crimson" if count else "black")
                axis.text(col, row, str(count), ha="center", va="center", fontsize=8, color=colour)
    axis.set(
        xticks=range(10),
        yticks=range(10),
        xlabel="predicted digit",
        ylabel="true digit",
        title=f"Test confusion matrix ({matrix.trace() / matrix.sum():.2%} correct)",
    )
    figure.colorbar(image, ax=axis, label="count + 1 (log scale)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path.name


def plot_first_layer_filters(convolution, path: Path) -> str:
    """The kernels of a convolution layer (the network's first), one small image each."""
    plt = _pyplot()
    kernels = np.asarray(convolution.get_weights()[0])[:, :, 0, :]
    count = kernels.shape[-1]
    columns = 8
    rows = int(np.ceil(count / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.2))
    limit = np.abs(kernels).max()
    for index, axis in enumerate(np.atleast_1d(axes).ravel()):
        axis.axis("off")
        if index < count:
            axis.imshow(kernels[:, :, index], cmap="RdBu_r", vmin=-limit, vmax=limit)
    figure.suptitle(f"First-layer filters ({convolution.name}, {kernels.shape[0]}x{kernels.shape[1]}; red positive, blue negative)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path.name


def plot_feature_maps(model, convolutions: list, images, labels, out: Path, channels: int = 8) -> dict[str, str]:
    """For each of the model's convolution layers: its first `channels` feature maps for one test digit of each class."""
    import keras

    from app.preprocess import mnist_pixels_to_input

    plt = _pyplot()
    examples = np.stack([mnist_pixels_to_input(images[np.flatnonzero(labels == digit)[0]]) for digit in range(10)])
    plots = {}
    for layer in convolutions:
        maps = np.asarray(keras.Model(model.input, layer.output)(examples, training=False))
        shown = min(channels, maps.shape[-1])
        figure, axes = plt.subplots(10, shown + 1, figsize=((shown + 1) * 0.9, 10 * 0.95))
        for digit in range(10):
            axes[digit, 0].imshow(examples[digit], cmap="gray")
            axes[digit, 0].set_ylabel(str(digit), rotation=0, labelpad=10)
            for channel in range(shown):
                axes[digit, channel + 1].imshow(maps[digit, :, :, channel], cmap="viridis")
        for axis in axes.ravel():
            axis.set_xticks([])
            axis.set_yticks([])
        for channel in range(shown):
            axes[0, channel + 1].set_title(f"#{channel}", fontsize=8)
        figure.suptitle(f"Feature maps of {layer.name} ({maps.shape[1]}x{maps.shape[2]}, first {shown} of {maps.shape[-1]})")
        figure.tight_layout()
        path = out / f"feature_maps_{layer.name}.png"
        figure.savefig(path, dpi=80)
        plt.close(figure)
        plots[f"feature_maps_{layer.name}"] = path.name
    return plots


def _chosen_epoch_line(card: dict) -> str:
    epochs = card["training"]["epochs"]
    if card.get("validation_accuracy") is None:
        return f"The last of {epochs} epochs is kept (no validation split)"
    line = f"Validation accuracy of the chosen epoch ({card['best_epoch']} of {epochs}): {card['validation_accuracy']:.2%}"
    if card.get("scene_validation_accuracy") is not None:
        line += f"; {card['scene_validation_accuracy']:.2%} on the same digits rendered as uploads and photos and preprocessed"
    return line


def _scenes_section(card: dict) -> str:
    """The scene images a run trained on: how many of each kind, how many preprocessing refused, how long they took."""
    scenes = card.get("scenes")
    if not scenes:
        return "No scene images: the network trained on MNIST's own pixels only.\n"
    training, validation = scenes["training"], scenes.get("validation")
    rows = "\n".join(f"| {kind} | {kept:,} | {training['refused_per_kind'][kind]:,} |" for kind, kept in training["per_kind"].items())
    held_out = (
        f" The {validation['images']:,} validation digits were rendered the same way (another seed) for the scene validation accuracy;"
        f" preprocessing refused {sum(validation['refused_per_kind'].values()):,} of them."
        if validation
        else ""
    )
    cached = " (read from the cache in this run)" if scenes.get("from_cache") else ""
    return f"""{training["images"]:,} training digits (never validation or test ones) were rendered as uploads and photos, two thirds
photos, and run through `app/preprocess.py`; the images it refused were left out. They are added to the clean
digits and are not distorted again.{held_out} Rendering took {training["render_seconds"]:,.0f} s{cached},
{training["images_per_second"]:.0f} images a second.

| kind | images | refused |
|---|---|---|
{rows}
"""


def _reproduce_command(card: dict) -> str:
    training = card["training"]
    scenes = card.get("scenes")
    # The number asked for: the images kept and those preprocessing refused.
    asked = scenes["training"]["images"] + sum(scenes["training"]["refused_per_kind"].values()) if scenes else 0
    recipe = training.get("recipe", "project")
    return f"python -m training.train --arch {card['architecture']} --recipe {recipe} --scenes {asked} --seed {training['seed']}"


def _time_split(training: dict) -> str:
    fit = f"{training['fit_seconds'] / 60:.1f} minutes fitting ({training['seconds_per_epoch']} s per epoch)"
    if "data_seconds" not in training:
        return fit
    return f"{training['data_seconds'] / 60:.1f} minutes preparing the data (loading, rendering the scenes), {fit}"


def _optimizer_line(training: dict) -> str:
    optimizer = {"adam": "Adam", "sgd": "SGD"}[training.get("optimizer", "adam")]
    if training.get("schedule", "cosine") == "cosine":
        rate = f"peak learning rate {training['learning_rate']}, warm-up then cosine decay"
    else:
        rate = f"constant learning rate {training['learning_rate']}"
    kept = "; the epoch with the best validation accuracy is kept" if training["validation_fraction"] else ""
    return f"{optimizer}, {rate}, batch size {training['batch_size']}, {training['epochs']} epochs, seed {training['seed']}{kept}"


def model_card_markdown(card: dict) -> str:
    """The human model card, written from card.json."""
    test = card["test"]
    training = card["training"]
    rows = "\n".join(f"| {digit} | {metrics['precision']:.4f} | {metrics['recall']:.4f} |" for digit, metrics in test["per_class"].items())
    plots = "\n".join(f"![{name.replace('_', ' ')}]({file})" for name, file in card.get("plots", {}).items())
    return f"""# Model card: {card["name"]} ({card["architecture"]})

A convolutional network that reads one handwritten digit (0-9) from a 28x28 grayscale image.
It is the model the digitserve service loads at start-up (`model/{card["model_file"]}`).

## Intended use
Recognising single handwritten digits that people draw or photograph and upload. Every
input must first go through `app/preprocess.py`, which turns any upload into MNIST's format:
{card["preprocessing"]["recipe"]}.

Not for: several digits in one image, letters, printed fonts far from handwriting, or any
decision that matters without a person checking it.

## Performance (MNIST test set, 10,000 images)
- **Test accuracy: {test["accuracy"]:.2%}**
- {_chosen_epoch_line(card)}
- Parameters: {card["parameters"]:,}

| digit | precision | recall |
|---|---|---|
{rows}

## Training
- Data: MNIST, {training["train_images"]:,} training images ({training.get("scene_images", 0):,} of them scene renders, below),
  {training["validation_images"]:,} held out of the training set for validation (the test set is never used to choose
  anything and stays clean MNIST); data sha256 `{card["data"]["sha256"][:16]}...`
- Augmentation: {"random rotation, shear, zoom, shift and stroke-width changes of the clean digits" if training["augmentation"] else "none"}
- {_optimizer_line(training)}
- Time: {training["total_seconds"] / 60:.1f} minutes in all on {training["machine"]}: {_time_split(training)}
- Devices: {training.get("devices", "CPU")}
- TensorFlow {card["versions"]["tensorflow"]}, Keras {card["versions"]["keras"]}, Python {card["versions"]["python"]}
- Model file sha256: `{card["model_sha256"]}`

Reproduce with `{_reproduce_command(card)}`.

### Scene images
{_scenes_section(card)}
## Uploads and photos
MNIST test digits rendered as uploads and as photos and scans (`training/upload_styles.py`,
`training/scenes.py`), through `app/preprocess.py`:

<!-- fixtures:start -->
Run `python -m training.upload_styles --readme model/README.md` to fill in this table.
<!-- fixtures:end -->

## MNIST-C
The 15 corruptions of MNIST-C (Mu & Gilmer 2019) through `/predict`, beside the model alone on the same arrays:

<!-- mnist-c:start -->
Run `python -m bench.mnist_c --readme model/README.md` to fill in this table.
<!-- mnist-c:end -->

## Confidence and "not a digit"
The service softens the softmax by a temperature and refuses what a detector on the model's
features calls no digit (`app/calibration.py`, fitted by `python -m training.calibrate`):

<!-- calibration:start -->
Run `python -m training.calibrate --readme model/README.md` to fill in this section.
<!-- calibration:end -->

## Limitations
MNIST digits were written by American census workers and students; other writing styles
(a crossed seven, a one with a long flag) are less well covered. The not-a-digit detector
learned its negatives from letters in the installed fonts, drawn shapes, scribbles, words,
rows of digits and bare paper: a kind of non-digit unlike all of those can still get a digit.

## Plots
{plots}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.report", description="Redraw the model card from card.json.")
    parser.add_argument("--model", type=Path, default=Path("model/digitserve.keras"))
    parser.add_argument("--data", help="MNIST .npz file or IDX folder, for the feature-map plots")
    args = parser.parse_args(argv)
    from app.classifier import ModelLoadError, load_keras_model
    from training.data import DataError, load_mnist, resolve_source

    card_path = args.model.parent / "card.json"
    try:
        card = json.loads(card_path.read_text())
        model = load_keras_model(args.model)
        data = load_mnist(resolve_source(args.data))
    except (OSError, ValueError, ModelLoadError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_report(card, model, data, args.model.parent)
    print(f"wrote {card_path.parent}/card.json, README.md and plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
