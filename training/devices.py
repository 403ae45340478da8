"""Which devices training runs on: every visible GPU through MirroredStrategy, else the CPU."""

from __future__ import annotations


def training_strategy():
    """MirroredStrategy over all visible GPUs, or TensorFlow's default (single-device) strategy."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy([gpu.name for gpu in gpus])
    return tf.distribute.get_strategy()


def describe_strategy(strategy) -> str:
    """A log line naming the strategy and the devices it trains on."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return f"MirroredStrategy over {strategy.num_replicas_in_sync} GPU(s): {', '.join(strategy.extended.worker_devices)}"
    return f"one device: {', '.join(device.name for device in tf.config.list_logical_devices()[:1])}"


def use_mixed_precision(requested: bool) -> str:
    """Set Keras' global dtype policy and return its name; float16 compute only pays off on GPUs."""
    import keras
    import tensorflow as tf

    policy = "mixed_float16" if requested and tf.config.list_logical_devices("GPU") else "float32"
    if requested and policy == "float32":
        print("mixed precision needs a GPU; training in float32 on the CPU")
    keras.mixed_precision.set_global_policy(policy)
    return policy
