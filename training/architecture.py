"""The networks digitserve can train: the project's own and the seed tutorials' classics.

Every network takes a batch of 28x28 float32 images in [0, 1] (white digit on black, as
`app.preprocess` makes them) and ends in a 10-way softmax, so the service loads any of them.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
DEFAULT_ARCHITECTURE = "digitnet"


def _inputs():
    inputs = keras.Input(shape=IMAGE_SHAPE, name="image")
    return inputs, layers.Reshape((*IMAGE_SHAPE, 1), name="add_channel")(inputs)


def _classifier(tensor):
    # Probabilities stay float32 even when the layers before compute in float16.
    return layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probabilities")(tensor)


def build_digitnet() -> keras.Model:
    """The shipped network: two conv blocks, a batch-normalised dense layer, dropout.

    Batch norm sits only on the dense layer: on a 2-core CPU it doubles the cost of a
    convolution block, while plain conv + bias + ReLU runs as one fused kernel.
    """
    inputs, tensor = _inputs()
    tensor = layers.Conv2D(32, 5, padding="same", activation="relu", name="block1_conv")(tensor)
    tensor = layers.MaxPooling2D(name="block1_pool")(tensor)
    tensor = layers.Conv2D(64, 3, padding="same", activation="relu", name="block2_conv")(tensor)
    tensor = layers.MaxPooling2D(name="block2_pool")(tensor)
    tensor = layers.Flatten(name="flatten")(tensor)
    tensor = layers.Dropout(0.1, name="flatten_dropout")(tensor)
    tensor = layers.Dense(256, use_bias=False, name="dense")(tensor)
    tensor = layers.BatchNormalization(momentum=0.9, name="dense_bn")(tensor)
    tensor = layers.ReLU(name="dense_relu")(tensor)
    tensor = layers.Dropout(0.25, name="dense_dropout")(tensor)
    return keras.Model(inputs, _classifier(tensor), name="digitnet")


def build_softmax_regression() -> keras.Model:
    """The first tutorial's 784x10 softmax regression."""
    inputs = keras.Input(shape=IMAGE_SHAPE, name="image")
    tensor = layers.Flatten(name="flatten")(inputs)
    return keras.Model(inputs, _classifier(tensor), name="softmax_regression")


def build_lenet() -> keras.Model:
    """LeNet as the Caffe tutorial has it: conv 20@5x5, pool, conv 50@5x5, pool, dense 500."""
    inputs, tensor = _inputs()
    tensor = layers.Conv2D(20, 5, name="conv1")(tensor)
    tensor = layers.MaxPooling2D(name="pool1")(tensor)
    tensor = layers.Conv2D(50, 5, name="conv2")(tensor)
    tensor = layers.MaxPooling2D(name="pool2")(tensor)
    tensor = layers.Flatten(name="flatten")(tensor)
    tensor = layers.Dense(500, activation="relu", name="dense")(tensor)
    return keras.Model(inputs, _classifier(tensor), name="lenet")


def build_tf2_tutorial_cnn() -> keras.Model:
    """The TensorFlow 2 tutorial CNN: conv 32, pool, conv 64, pool, conv 64, dense 64."""
    inputs, tensor = _inputs()
    tensor = layers.Conv2D(32, 3, activation="relu", name="conv1")(tensor)
    tensor = layers.MaxPooling2D(name="pool1")(tensor)
    tensor = layers.Conv2D(64, 3, activation="relu", name="conv2")(tensor)
    tensor = layers.MaxPooling2D(name="pool2")(tensor)
    tensor = layers.Conv2D(64, 3, activation="relu", name="conv3")(tensor)
    tensor = layers.Flatten(name="flatten")(tensor)
    tensor = layers.Dense(64, activation="relu", name="dense")(tensor)
    return keras.Model(inputs, _classifier(tensor), name="tf2_tutorial_cnn")


def build_keras_classic_cnn() -> keras.Model:
    """The classic Keras/TF1 'deep MNIST' CNN: conv 32@5x5, pool, conv 64@5x5, pool, dense 1024."""
    inputs, tensor = _inputs()
    tensor = layers.Conv2D(32, 5, padding="same", activation="relu", name="conv1")(tensor)
    tensor = layers.MaxPooling2D(name="pool1")(tensor)
    tensor = layers.Conv2D(64, 5, padding="same", activation="relu", name="conv2")(tensor)
    tensor = layers.MaxPooling2D(name="pool2")(tensor)
    tensor = layers.Flatten(name="flatten")(tensor)
    tensor = layers.Dense(1024, activation="relu", name="dense")(tensor)
    tensor = layers.Dropout(0.5, name="dropout")(tensor)
    return keras.Model(inputs, _classifier(tensor), name="keras_classic_cnn")


ARCHITECTURES: dict[str, Callable[[], keras.Model]] = {
    "digitnet": build_digitnet,
    "softmax": build_softmax_regression,
    "lenet": build_lenet,
    "tf2-cnn": build_tf2_tutorial_cnn,
    "keras-cnn": build_keras_classic_cnn,
}


def build_model(name: str = DEFAULT_ARCHITECTURE) -> keras.Model:
    """Build the named, uncompiled network."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]()
