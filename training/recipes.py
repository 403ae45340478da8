"""Training recipes: the project's own and the one each seed tutorial published with its network.

A recipe is everything `training.train` needs besides the network: optimizer, learning rate
and its schedule, batch size, epochs, augmentation and how the kept epoch is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Recipe:
    """How to train a network, and where the recipe comes from."""

    optimizer: str  # "adam" or "sgd"
    learning_rate: float
    batch_size: int
    epochs: int
    augment: bool
    # "cosine": warm-up then cosine decay; "constant": the tutorials' fixed rate.
    schedule: str
    # Hold out a share of the training set and keep the epoch that scores best on it; 0 keeps the last epoch.
    validation_fraction: float
    momentum: float = 0.0
    source: str = "digitserve"
    # The test accuracy the recipe's source reports, when it is a tutorial's.
    published_accuracy: float | None = None

    def with_changes(self, **changes) -> Recipe:
        """A copy with some fields replaced; None values are ignored."""
        return replace(self, **{key: value for key, value in changes.items() if value is not None})


PROJECT_RECIPE = Recipe(
    optimizer="adam",
    learning_rate=1.5e-3,
    batch_size=128,
    epochs=18,
    augment=True,
    schedule="cosine",
    validation_fraction=0.05,
)


def _tutorial(optimizer: str, learning_rate: float, batch_size: int, epochs: int, source: str, published_accuracy: float) -> Recipe:
    """A tutorial's recipe: the full 60,000 images, no augmentation, a constant rate, the last epoch kept."""
    return Recipe(
        optimizer=optimizer,
        learning_rate=learning_rate,
        batch_size=batch_size,
        epochs=epochs,
        augment=False,
        schedule="constant",
        validation_fraction=0.0,
        source=source,
        published_accuracy=published_accuracy,
    )


# Each tutorial's own recipe, as published with its network.
TUTORIAL_RECIPES: dict[str, Recipe] = {
    "softmax": _tutorial("sgd", 0.5, 100, 2, "TensorFlow 'MNIST for ML beginners': gradient descent 0.5, 1,000 steps of 100 (about 92%)", 0.91),
    "lenet": _tutorial("sgd", 0.01, 128, 20, "LeNet in Keras: SGD 0.01, 20 epochs, batch 128 (98.49%)", 0.9849),
    "tf2-cnn": _tutorial("adam", 1e-3, 32, 5, "TensorFlow 2 CNN tutorial: Adam, 5 epochs, batch 32 (99.01%)", 0.9901),
    "keras-cnn": _tutorial("adam", 1e-4, 50, 6, "Keras/TF1 'deep MNIST' CNN: Adam 1e-4, batch 50, 6 epochs (97.5%; 99.15% in a longer run)", 0.975),
}

RECIPE_NAMES = ("project", "tutorial")


def recipe_for(arch: str, name: str = "project") -> Recipe:
    """The named recipe for `arch`: 'project', or 'tutorial' (the network's own tutorial)."""
    if name == "project":
        return PROJECT_RECIPE
    if name != "tutorial":
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPE_NAMES)}")
    if arch not in TUTORIAL_RECIPES:
        raise ValueError(f"{arch} has no tutorial recipe; it is trained with the project recipe")
    return TUTORIAL_RECIPES[arch]
