"""Train a digit classifier on MNIST and write the model, its card and its plots.

python -m training.train --data mnist.npz --epochs 16 --out model/
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

DEFAULT_OUT = Path("model")
MODEL_FILENAME = "digitserve.keras"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    parser.add_argument("--data", help=f"MNIST .npz file or IDX folder (default: ${DATA_ENV_VAR}, else Keras' download)")
    parser.add_argument("--arch", default=DEFAULT_ARCHITECTURE, choices=sorted(ARCHITECTURES), help="network to train")
    parser.add_argument("--epochs", type=int, default=18, help="training epochs (default 18)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    parser.add_argument("--learning-rate", type=float, default=1.5e-3, help="peak Adam learning rate (default 1.5e-3)")
    parser.add_argument("--validation-fraction", type=float, default=0.05, help="share of the training set held out (default 0.05)")
    parser.add_argument("--no-augment", action="store_true", help="train on MNIST's pixels as they are")
    parser.add_argument("--seed", type=int, default=42, help="seed for the split, initialisation and augmentation")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N training images only (smoke runs)")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default {DEFAULT_OUT}/)")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots (faster smoke runs)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be at least 1")
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


def train(args: argparse.Namespace) -> dict:
    """Run the whole recipe and return what the model card records."""
    import keras
    import tensorflow as tf

    started = time.monotonic()
    data = load_mnist(resolve_source(args.data))
    seed_everything(args.seed)
    images, labels = data.x_train, data.y_train
    if args.limit is not None:
        images, labels = images[: args.limit], labels[: args.limit]
    train_x, train_y, val_x, val_y = split_validation(mnist_pixels_to_input(images), labels, args.validation_fraction, args.seed)

    model = build_model(args.arch)
    steps_per_epoch = math.ceil(len(train_x) / args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=args.learning_rate / 10,
        warmup_target=args.learning_rate,
        warmup_steps=steps_per_epoch,
        decay_steps=max(1, steps_per_epoch * (args.epochs - 1)),
        alpha=0.01,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    keep_best = keep_best_epoch_callback()
    print(
        f"training {args.arch} ({model.count_params():,} parameters) on {len(train_x):,} images, "
        f"validating on {len(val_x):,}, devices: {[d.name for d in tf.config.list_logical_devices()]}"
    )
    fit_started = time.monotonic()
    history = model.fit(
        make_training_dataset(train_x, train_y, args.batch_size, args.seed, augment=not args.no_augment),
        steps_per_epoch=steps_per_epoch,
        epochs=args.epochs,
        validation_data=(val_x, val_y),
        validation_batch_size=1000,
        callbacks=[keep_best],
        verbose=1 if sys.stdout.isatty() else 2,
    )
    fit_seconds = time.monotonic() - fit_started
    model.set_weights(keep_best.best_weights)

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
        "validation_accuracy": round(float(keep_best.best_key[0]), 6),
        "best_epoch": keep_best.best_epoch,
        "training": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "validation_fraction": args.validation_fraction,
            "augmentation": not args.no_augment,
            "seed": args.seed,
            "train_images": len(train_x),
            "validation_images": len(val_x),
            "fit_seconds": round(fit_seconds, 1),
            "seconds_per_epoch": round(fit_seconds / args.epochs, 1),
            "total_seconds": round(time.monotonic() - started, 1),
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


def machine_description() -> str:
    """A short description of the CPU and core count the run used."""
    import os

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}"


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
