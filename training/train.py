"""Train a digit classifier on MNIST and write the model, its card and its plots.

python -m training.train --data mnist.npz --out model/
python -m training.train --arch lenet --recipe tutorial --out runs/lenet/
python -m training.train --data mnist.npz --limit 2000 --scenes 500 --epochs 1 --out runs/smoke/ --no-plots

`train()` reads in the sections of Keras' own MNIST example: prepare the data, build the model,
train it with validation data, evaluate it on the test set, then save it and write its report
(the card itself is built in training/report.py).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.preprocess import mnist_pixels_to_input
from training.data import DATA_ENV_VAR, DataError, MnistData, load_mnist, resolve_source, split_validation
from training.devices import describe_strategy, training_strategy, use_mixed_precision
from training.evaluate import evaluate_model
from training.markdown import replace_section
from training.recipes import PROJECT_RECIPE, RECIPE_NAMES, Recipe, recipe_for
from training.report import MODEL_FILENAME, model_card, write_report
from training.scene_data import SceneSet, default_scene_cache, render_scenes

# training.architecture imports Keras, so it is imported inside the functions that need it: the
# scene-rendering workers are spawned, import this module afresh, and should not each load TensorFlow.

DEFAULT_OUT = Path("model")
REPOSITORY = Path(__file__).resolve().parents[1]
# Scene images are off unless asked for. Measured with 30,000 of them (18 epochs, seed 42): the project's
# photo fixtures rose from 91.9% to 93.7%, but photos from an independent generator fell from 91.3% to
# 90.3% and MNIST test from 99.65% to 99.51%, below the model's bar: the gain was the renderer's style,
# not photos. Each image takes about 45 ms of CPU to render and preprocess (cached once made).
DEFAULT_SCENES = 0


def build_parser() -> argparse.ArgumentParser:
    """The command line: data, network, recipe overrides, scenes, devices and outputs."""
    from training.architecture import ARCHITECTURES, DEFAULT_ARCHITECTURE

    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    parser.add_argument("--data", help=f"MNIST .npz file or IDX folder (default: ${DATA_ENV_VAR}, else Keras' download)")
    parser.add_argument("--arch", default=DEFAULT_ARCHITECTURE, choices=sorted(ARCHITECTURES), help="network to train")
    parser.add_argument(
        "--recipe",
        default="project",
        choices=RECIPE_NAMES,
        help="project: augmentation, cosine schedule, best validation epoch; tutorial: the network's own tutorial recipe",
    )
    parser.add_argument("--epochs", type=int, help=f"training epochs (project recipe: {PROJECT_RECIPE.epochs})")
    parser.add_argument("--batch-size", type=int, help=f"batch size per device (project recipe: {PROJECT_RECIPE.batch_size})")
    parser.add_argument("--learning-rate", type=float, help=f"peak learning rate (project recipe: {PROJECT_RECIPE.learning_rate})")
    parser.add_argument(
        "--validation-fraction", type=float, help=f"share of the training set held out (project recipe: {PROJECT_RECIPE.validation_fraction})"
    )
    parser.add_argument("--no-augment", action="store_true", help="train on MNIST's pixels as they are")
    parser.add_argument(
        "--scenes",
        type=int,
        default=DEFAULT_SCENES,
        help="training digits rendered as uploads and photos and run through app/preprocess.py, added to the clean ones (default: none)",
    )
    parser.add_argument("--scene-cache", type=Path, help="folder of rendered scene images, reused by later runs (default: the user's cache folder)")
    parser.add_argument("--mixed-precision", action="store_true", help="compute in float16 on GPUs (weights stay float32)")
    parser.add_argument("--track-test", action="store_true", help="also score the test set after each epoch (reported, never used to choose)")
    parser.add_argument("--seed", type=int, default=42, help="seed for the split, initialisation and augmentation")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N training images only (smoke runs)")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default {DEFAULT_OUT}/)")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots (faster smoke runs)")
    parser.add_argument(
        "--no-calibration", action="store_true", help="skip fitting the temperature and the not-a-digit detector (minutes; smoke runs)"
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line, with the recipe and its overrides resolved into `recipe_settings`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        recipe = recipe_for(args.arch, args.recipe)
    except ValueError as error:
        parser.error(str(error))
    if args.scenes < 0:
        parser.error("--scenes must be 0 or more")
    args.scene_cache = args.scene_cache or default_scene_cache()
    if args.scene_cache.resolve().is_relative_to(REPOSITORY):
        parser.error("--scene-cache must be outside the repository: the cached images are large and are rebuilt on demand")
    args.recipe_settings = recipe.with_changes(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        validation_fraction=args.validation_fraction,
        augment=False if args.no_augment else None,
    )
    if args.recipe_settings.epochs < 1 or args.recipe_settings.batch_size < 1:
        parser.error("--epochs and --batch-size must be at least 1")
    if not 0.0 <= args.recipe_settings.validation_fraction < 1.0:
        parser.error("--validation-fraction must be at least 0 and below 1")
    if args.limit is not None and args.limit < 10:
        parser.error("--limit must be at least 10")
    if args.out is None:
        if args.limit is not None:
            parser.error("a --limit run would overwrite the shipped model in model/; pass --out for it")
        args.out = DEFAULT_OUT
    return args


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and ask TensorFlow for deterministic kernels."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@dataclass(frozen=True)
class TrainingSets:
    """What the network learns from and is judged on: clean MNIST then its scene renders, and the validation sets."""

    images: np.ndarray  # (N, 28, 28) float32: the clean training digits, then the scene images
    labels: np.ndarray
    clean: np.ndarray  # (N,) bool: True for the clean digits, the ones the random distortions apply to
    validation: tuple[np.ndarray, np.ndarray] | None
    scenes: SceneSet | None
    scene_validation: SceneSet | None


def prepare_data(data: MnistData, args: argparse.Namespace) -> TrainingSets:
    """Hold out the validation digits, then add scene renders of the training digits (and score-only ones of the validation digits)."""
    recipe: Recipe = args.recipe_settings
    digits, labels = data.x_train, data.y_train
    if args.limit is not None:
        digits, labels = digits[: args.limit], labels[: args.limit]
    validation_digits = validation_labels = None
    if recipe.validation_fraction > 0:
        digits, labels, validation_digits, validation_labels = split_validation(digits, labels, recipe.validation_fraction, args.seed)
    scenes = scene_validation = None
    if args.scenes:
        # Only training digits are rendered for training; the validation digits get a copy of their own, drawn from another seed.
        scenes = render_scenes(digits, labels, args.scenes, args.seed, args.scene_cache, name="training scenes")
        if validation_digits is not None:
            scene_validation = render_scenes(
                validation_digits, validation_labels, len(validation_digits), args.seed + 1, args.scene_cache, name="validation scenes"
            )
    scene_images = scenes.images if scenes else np.zeros((0, 28, 28), np.float32)
    scene_labels = scenes.labels if scenes else np.zeros(0, labels.dtype)
    return TrainingSets(
        images=np.concatenate([mnist_pixels_to_input(digits), scene_images]),
        labels=np.concatenate([labels, scene_labels]),
        clean=np.arange(len(digits) + len(scene_images)) < len(digits),
        validation=(mnist_pixels_to_input(validation_digits), validation_labels) if validation_digits is not None else None,
        scenes=scenes,
        scene_validation=scene_validation,
    )


def make_training_dataset(images, labels, clean, batch_size: int, seed: int, augment: bool):
    """A shuffled, endlessly repeating, augmented and prefetched tf.data pipeline.

    Only the clean MNIST digits are distorted. The scene images are already what app/preprocess.py
    makes of a rendered upload, with the renderers' own variety of pen, size and slant, and the
    service will feed the model exactly such images: a random shift or zoom would undo the centring
    and 20x20 fit the pipeline guarantees, and train on inputs the service never produces.
    """
    import tensorflow as tf

    from training.augmentation import AugmentationSettings, augment_batch

    dataset = tf.data.Dataset.from_tensor_slices((images, labels, clean)).cache()
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).repeat()
    if augment:
        settings = AugmentationSettings()
        # One seed pair per batch from a seeded stream keeps parallel augmentation repeatable.
        batch_seeds = tf.data.Dataset.random(seed=seed).batch(2)
        dataset = tf.data.Dataset.zip(dataset, batch_seeds).map(
            lambda batch, pair: (tf.where(batch[2][:, tf.newaxis, tf.newaxis], augment_batch(batch[0], pair, settings), batch[0]), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    else:
        dataset = dataset.map(lambda images, labels, clean: (images, labels))
    return dataset.prefetch(tf.data.AUTOTUNE)


def build_optimizer(recipe: Recipe, steps_per_epoch: int):
    """The recipe's optimizer, with warm-up and cosine decay or a constant rate."""
    import keras

    learning_rate = recipe.learning_rate
    if recipe.schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=recipe.learning_rate / 10,
            warmup_target=recipe.learning_rate,
            warmup_steps=steps_per_epoch,
            decay_steps=max(1, steps_per_epoch * (recipe.epochs - 1)),
            alpha=0.01,
        )
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=recipe.momentum)
    return keras.optimizers.Adam(learning_rate=learning_rate)


def compile_model(arch: str, recipe: Recipe, strategy, steps_per_epoch: int):
    """The network, built and compiled under the distribution strategy."""
    from training.architecture import build_model

    with strategy.scope():
        model = build_model(arch)
        model.compile(optimizer=build_optimizer(recipe, steps_per_epoch), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def keep_best_epoch_callback(epochs: int):
    """Keras' EarlyStopping, set to keep the weights of the epoch with the best validation accuracy and never to stop early.

    A patience of the whole run means it never stops. Keras 3 restores the best weights at the end
    of training whether it stopped early or not (Keras 2 did only when it stopped), so the model
    leaves fit() holding the best epoch. Ties keep the earlier epoch.
    """
    import keras

    return keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=epochs, restore_best_weights=True, verbose=1)


def score_each_epoch_callback(scored: dict[str, tuple[np.ndarray, np.ndarray]]):
    """A Keras callback that records the accuracy on each named (images, labels) set and the training time after each epoch.

    The sets are for reporting only; the time spent scoring them is left out of `elapsed_seconds`,
    so the figures time the training alone.
    """
    import keras

    from training.evaluate import predict_probabilities, score

    class ScoreEachEpoch(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started, self.scoring_seconds = time.monotonic(), 0.0

        def on_epoch_end(self, epoch, logs=None):
            scoring_started = time.monotonic()
            if logs is not None:
                logs["elapsed_seconds"] = scoring_started - self.started - self.scoring_seconds
                for name, (images, labels) in scored.items():
                    logs[name] = score(labels, predict_probabilities(self.model, images).argmax(axis=1)).accuracy
            self.scoring_seconds += time.monotonic() - scoring_started

    return ScoreEachEpoch()


@dataclass(frozen=True)
class Fitted:
    """What fitting leaves for the card: the history, the epoch whose weights the model holds, the training time."""

    history: dict[str, list[float]]
    best_epoch: int  # counted from 1
    validation_accuracy: float | None  # the best epoch's; None without a validation split
    seconds: float  # fitting alone, without the time spent scoring the reported sets


def fit_model(model, sets: TrainingSets, data: MnistData, args: argparse.Namespace, global_batch: int, steps_per_epoch: int) -> Fitted:
    """Fit with validation data; the model ends holding the best validation epoch's weights (the last epoch's without a split)."""
    recipe: Recipe = args.recipe_settings
    reported = {"test_accuracy": (mnist_pixels_to_input(data.x_test), data.y_test)} if args.track_test else {}
    if sets.scene_validation is not None:
        reported["scene_val_accuracy"] = (sets.scene_validation.images, sets.scene_validation.labels)
    scorer = score_each_epoch_callback(reported) if reported else None
    keep_best = keep_best_epoch_callback(recipe.epochs) if sets.validation is not None else None
    started = time.monotonic()
    history = model.fit(
        make_training_dataset(sets.images, sets.labels, sets.clean, global_batch, args.seed, augment=recipe.augment),
        steps_per_epoch=steps_per_epoch,
        epochs=recipe.epochs,
        validation_data=sets.validation,
        validation_batch_size=1000,
        callbacks=[callback for callback in (scorer, keep_best) if callback is not None],
        # The dataset shuffles itself; fit()'s own shuffling applies to arrays only, and warns when asked of a dataset.
        shuffle=False,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    return Fitted(
        history=history.history,
        best_epoch=keep_best.best_epoch + 1 if keep_best else recipe.epochs,
        validation_accuracy=float(keep_best.best) if keep_best else None,
        seconds=time.monotonic() - started - (scorer.scoring_seconds if scorer else 0.0),
    )


def save_for_serving(model, arch: str, out: Path) -> Path:
    """Save the weights in a fresh, uncompiled copy so the file holds no optimizer state; return the file."""
    from training.architecture import build_model

    clean = build_model(arch)
    clean.set_weights(model.get_weights())
    out.mkdir(parents=True, exist_ok=True)
    path = out / MODEL_FILENAME
    clean.save(path)
    return path


def train(args: argparse.Namespace) -> dict:
    """Prepare the data, build the model, train, evaluate, save and report; return the card."""
    import keras

    recipe: Recipe = args.recipe_settings
    started = time.monotonic()
    data = load_mnist(resolve_source(args.data))
    seed_everything(args.seed)
    sets = prepare_data(data, args)
    data_seconds = time.monotonic() - started

    policy = use_mixed_precision(args.mixed_precision)
    strategy = training_strategy()
    # Each device gets the recipe's batch, so the global batch grows with the number of GPUs.
    global_batch = recipe.batch_size * strategy.num_replicas_in_sync
    steps_per_epoch = math.ceil(len(sets.images) / global_batch)
    model = compile_model(args.arch, recipe, strategy, steps_per_epoch)
    images = f"{len(sets.images):,} images ({int((~sets.clean).sum()):,} of them scenes)"
    print(f"training {args.arch} ({model.count_params():,} parameters) with the {args.recipe} recipe on {images}")
    print(f"devices: {describe_strategy(strategy)}; global batch {global_batch}; dtype policy {policy}")

    fitted = fit_model(model, sets, data, args, global_batch, steps_per_epoch)
    # The saved model computes in float32 whatever policy trained it.
    keras.mixed_precision.set_global_policy("float32")

    evaluation = evaluate_model(model, data.x_test, data.y_test)

    save_for_serving(model, args.arch, args.out)
    timings = {"data_seconds": data_seconds, "fit_seconds": fitted.seconds, "total_seconds": time.monotonic() - started}
    card = model_card(args, model, evaluation, sets, fitted, data, timings, devices=describe_strategy(strategy), dtype_policy=policy)
    write_report(card, model, data, args.out, plots=not args.no_plots)
    # Calibration needs the held-out validation digits, which the tutorial recipes do not keep.
    if not args.no_calibration and recipe.validation_fraction > 0:
        from training.calibrate import README_SECTION, calibrate, section_markdown

        card["calibration"] = calibrate(args.out / MODEL_FILENAME, data, args.scene_cache, plots=not args.no_plots)
        replace_section(args.out / "README.md", README_SECTION, section_markdown(card["calibration"]))
    return card


def main(argv: list[str] | None = None) -> int:
    """Train from the command line; exit 2 with one sentence when the data cannot be read."""
    args = parse_args(argv)
    try:
        card = train(args)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"saved {args.out / card['model_file']} (test accuracy {card['test']['accuracy']:.4%}, "
        f"best epoch {card['best_epoch']}, {card['training']['total_seconds']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
