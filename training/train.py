"""Train a digit classifier on MNIST and write the model, its card and its plots.

python -m training.train --data mnist.npz --out model/
python -m training.train --arch lenet --recipe tutorial --out runs/lenet/
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

from app.preprocess import mnist_pixels_to_input
from training.architecture import ARCHITECTURES, DEFAULT_ARCHITECTURE, build_model
from training.data import DATA_ENV_VAR, DataError, load_mnist, resolve_source, split_validation
from training.devices import describe_strategy, training_strategy, use_mixed_precision
from training.machine import machine_description
from training.recipes import PROJECT_RECIPE, RECIPE_NAMES, Recipe, recipe_for

DEFAULT_OUT = Path("model")
MODEL_FILENAME = "digitserve.keras"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
    parser.add_argument("--mixed-precision", action="store_true", help="compute in float16 on GPUs (weights stay float32)")
    parser.add_argument("--track-test", action="store_true", help="also score the test set after each epoch (reported, never used to choose)")
    parser.add_argument("--seed", type=int, default=42, help="seed for the split, initialisation and augmentation")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N training images only (smoke runs)")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default {DEFAULT_OUT}/)")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots (faster smoke runs)")
    args = parser.parse_args(argv)
    try:
        recipe = recipe_for(args.arch, args.recipe)
    except ValueError as error:
        parser.error(str(error))
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


def make_training_dataset(images, labels, batch_size: int, seed: int, augment: bool):
    """A shuffled, endlessly repeating, augmented and prefetched tf.data pipeline."""
    import tensorflow as tf

    from training.augmentation import AugmentationSettings, augment_batch

    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).cache()
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).repeat()
    if augment:
        settings = AugmentationSettings()
        # One seed pair per batch from a seeded stream keeps parallel augmentation repeatable.
        batch_seeds = tf.data.Dataset.random(seed=seed).batch(2)
        dataset = tf.data.Dataset.zip(dataset, batch_seeds).map(
            lambda batch, pair: (augment_batch(batch[0], pair, settings), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def keep_best_epoch_callback():
    """A Keras callback that remembers the weights of the epoch with the best validation accuracy."""
    import keras

    class KeepBestEpoch(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best_epoch, self.best_key, self.best_weights = 0, None, None

        def on_epoch_end(self, epoch, logs=None):
            # Ties on accuracy go to the lower validation loss.
            key = (logs["val_accuracy"], -logs["val_loss"])
            if self.best_key is None or key > self.best_key:
                self.best_epoch, self.best_key = epoch + 1, key
                self.best_weights = self.model.get_weights()

    return KeepBestEpoch()


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


def test_accuracy_callback(images, labels):
    """A Keras callback that records test accuracy and training time after each epoch, for reporting only.

    The time spent scoring is left out of `elapsed_seconds`, so the figures time the training alone.
    """
    import keras

    from training.evaluate import evaluate_model

    class TrackTestAccuracy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started, self.scoring_seconds = time.monotonic(), 0.0

        def on_epoch_end(self, epoch, logs=None):
            scoring_started = time.monotonic()
            if logs is not None:
                logs["elapsed_seconds"] = scoring_started - self.started - self.scoring_seconds
                logs["test_accuracy"] = evaluate_model(self.model, images, labels).accuracy
            self.scoring_seconds += time.monotonic() - scoring_started

    return TrackTestAccuracy()


def train(args: argparse.Namespace) -> dict:
    """Run the whole recipe and return what the model card records."""
    import keras
    import tensorflow as tf

    recipe: Recipe = args.recipe_settings
    started = time.monotonic()
    data = load_mnist(resolve_source(args.data))
    seed_everything(args.seed)
    images, labels = data.x_train, data.y_train
    if args.limit is not None:
        images, labels = images[: args.limit], labels[: args.limit]
    images = mnist_pixels_to_input(images)
    if recipe.validation_fraction > 0:
        train_x, train_y, val_x, val_y = split_validation(images, labels, recipe.validation_fraction, args.seed)
        validation = (val_x, val_y)
    else:
        train_x, train_y, validation = images, labels, None

    policy = use_mixed_precision(args.mixed_precision)
    strategy = training_strategy()
    # Each device gets the recipe's batch, so the global batch grows with the number of GPUs.
    global_batch = recipe.batch_size * strategy.num_replicas_in_sync
    steps_per_epoch = math.ceil(len(train_x) / global_batch)
    with strategy.scope():
        model = build_model(args.arch)
        model.compile(optimizer=build_optimizer(recipe, steps_per_epoch), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    tracker = test_accuracy_callback(data.x_test, data.y_test) if args.track_test else None
    callbacks = [tracker] if tracker else []
    keep_best = keep_best_epoch_callback() if validation is not None else None
    callbacks += [keep_best] if keep_best else []
    print(f"training {args.arch} ({model.count_params():,} parameters) with the {args.recipe} recipe on {len(train_x):,} images")
    print(f"devices: {describe_strategy(strategy)}; global batch {global_batch}; dtype policy {policy}")
    fit_started = time.monotonic()
    history = model.fit(
        make_training_dataset(train_x, train_y, global_batch, args.seed, augment=recipe.augment),
        steps_per_epoch=steps_per_epoch,
        epochs=recipe.epochs,
        validation_data=validation,
        validation_batch_size=1000,
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    fit_seconds = time.monotonic() - fit_started - (tracker.scoring_seconds if tracker else 0.0)
    if keep_best is not None:
        model.set_weights(keep_best.best_weights)
    # The saved model computes in float32 whatever policy trained it.
    keras.mixed_precision.set_global_policy("float32")

    from training.evaluate import evaluate_model

    evaluation = evaluate_model(model, data.x_test, data.y_test)
    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / MODEL_FILENAME
    save_for_serving(model, args.arch, model_path)
    card = {
        "name": "digitserve",
        "architecture": args.arch,
        "model_file": MODEL_FILENAME,
        "parameters": int(model.count_params()),
        "test": evaluation.as_dict(),
        "validation_accuracy": round(float(keep_best.best_key[0]), 6) if keep_best else None,
        "best_epoch": keep_best.best_epoch if keep_best else recipe.epochs,
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
            "train_images": len(train_x),
            "validation_images": len(validation[0]) if validation else 0,
            "fit_seconds": round(fit_seconds, 1),
            "seconds_per_epoch": round(fit_seconds / recipe.epochs, 1),
            "total_seconds": round(time.monotonic() - started, 1),
            "devices": describe_strategy(strategy),
            "dtype_policy": policy,
            "machine": machine_description(),
        },
        "data": {"source": Path(data.source).name, "sha256": data.sha256},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()},
        "history": {key: [round(float(v), 6) for v in values] for key, values in history.history.items()},
    }
    return {"card": card, "model": model, "data": data, "model_path": model_path}


def save_for_serving(model, arch: str, path: Path) -> None:
    """Save the weights in a fresh, uncompiled copy so the file holds no optimizer state."""
    clean = build_model(arch)
    clean.set_weights(model.get_weights())
    clean.save(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = train(args)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from training.report import write_report

    write_report(result["card"], result["model"], result["data"], args.out, plots=not args.no_plots)
    card = result["card"]
    print(
        f"saved {result['model_path']} (test accuracy {card['test']['accuracy']:.4%}, "
        f"best epoch {card['best_epoch']}, {card['training']['total_seconds']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
