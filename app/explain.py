"""Why the model chose a digit: heatmaps over the 28x28 input, computed from the loaded Keras model.

Grad-CAM (the default) weighs the last convolution layer's feature maps by the gradients of
the digit's score (its logit), in the element-wise form of HiResCAM: on a network this shallow,
averaging the gradients first (the original Grad-CAM) smears the map into the background.
Saliency is |gradient x input| of the score; occlusion measures how much the probability falls
when each patch is blanked, a check that needs no gradients at all. All return (28, 28)
float32 in [0, 1]. Plain /predict never runs any of this.
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
from PIL import Image

Method = Literal["gradcam", "saliency", "occlusion"]
METHODS: tuple[Method, ...] = ("gradcam", "saliency", "occlusion")
OCCLUSION_PATCH, OCCLUSION_STRIDE = 6, 2
LOGIT_LAYER_NEEDED = "explanations need the model to end in a Dense layer with a softmax activation, or in a linear Dense layer followed by a softmax"


class Explainer:
    """Heatmaps for one model; the gradient model is built once and reused."""

    def __init__(self, model):
        import keras
        import tensorflow as tf

        self._tf = tf
        self.model = model
        convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        self.conv_layer = convolutions[-1] if convolutions else None
        # Scores are logits, taken before the final softmax: probabilities saturate near 1.
        self._classifier = logit_layer(model)
        if self._classifier is None:
            raise ValueError(LOGIT_LAYER_NEEDED)
        outputs = [self._classifier.input]
        if self.conv_layer is not None:
            outputs.insert(0, self.conv_layer.output)
        # Built on the single input tensor, so that it is called with one tensor as the model is.
        self._gradient_model = keras.Model(model.input, outputs)

    def explain(self, image: np.ndarray, method: Method = "gradcam", digit: int | None = None) -> tuple[int, np.ndarray]:
        """(explained digit, heatmap) for a (28, 28) image; the digit defaults to the prediction."""
        image = np.asarray(image, dtype=np.float32).reshape(1, 28, 28)
        if digit is None:
            digit = int(np.asarray(self.model(image, training=False))[0].argmax())
        if method == "gradcam" and self.conv_layer is not None:
            heat = self._gradcam(image, digit)
        elif method in ("gradcam", "saliency"):
            heat = self._saliency(image, digit)
        elif method == "occlusion":
            heat = self._occlusion(image, digit)
        else:
            raise ValueError(f"unknown explanation method {method!r}; choose one of {', '.join(METHODS)}")
        return digit, _normalised(heat)

    def _logit(self, features, digit):
        kernel, bias = self._classifier.kernel, self._classifier.bias
        return self._tf.linalg.matvec(features, kernel[:, digit]) + bias[digit]

    def _gradcam(self, image, digit):
        tf = self._tf
        with tf.GradientTape() as tape:
            feature_maps, features = self._gradient_model(image, training=False)
            score = self._logit(features, digit)
        gradients = tape.gradient(score, feature_maps)
        cam = tf.nn.relu(tf.reduce_sum(gradients * feature_maps, axis=-1))[0].numpy()
        return np.asarray(Image.fromarray(cam.astype(np.float32), mode="F").resize((28, 28), Image.Resampling.BILINEAR))

    def _saliency(self, image, digit):
        tf = self._tf
        tensor = tf.convert_to_tensor(image)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            features = self._gradient_model(tensor, training=False)[-1]
            score = self._logit(features, digit)
        return np.abs(tape.gradient(score, tensor).numpy()[0] * image[0])

    def _occlusion(self, image, digit):
        positions = range(0, 28 - OCCLUSION_PATCH + 1, OCCLUSION_STRIDE)
        occluded, boxes = [], []
        for top in positions:
            for left in positions:
                copy = image[0].copy()
                copy[top : top + OCCLUSION_PATCH, left : left + OCCLUSION_PATCH] = 0.0
                occluded.append(copy)
                boxes.append((top, left))
        baseline = float(np.asarray(self.model(image, training=False))[0, digit])
        # One batched model call for every occluded copy.
        probabilities = np.asarray(self.model(np.stack(occluded), training=False))[:, digit]
        heat, counts = np.zeros((28, 28), np.float32), np.zeros((28, 28), np.float32)
        for (top, left), probability in zip(boxes, probabilities, strict=True):
            heat[top : top + OCCLUSION_PATCH, left : left + OCCLUSION_PATCH] += max(baseline - float(probability), 0.0)
            counts[top : top + OCCLUSION_PATCH, left : left + OCCLUSION_PATCH] += 1
        return heat / np.maximum(counts, 1)


def logit_layer(model):
    """The Dense layer whose outputs before activation are the class scores (logits), or None.

    That is a last Dense layer with a softmax activation, or a linear one followed only by a
    softmax (an `Activation("softmax")` or `Softmax` layer): both are common ways to end a classifier.
    """
    import keras

    def is_softmax(layer) -> bool:
        return isinstance(layer, keras.layers.Softmax) or (
            isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.softmax
        )

    *earlier, last = model.layers
    if isinstance(last, keras.layers.Dense) and last.activation is keras.activations.softmax:
        return last
    if is_softmax(last) and earlier and isinstance(earlier[-1], keras.layers.Dense) and earlier[-1].activation is keras.activations.linear:
        return earlier[-1]
    return None


def _normalised(heat: np.ndarray) -> np.ndarray:
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    heat = np.clip(heat, 0.0, None)
    peak = heat.max()
    return (heat / peak if peak > 0 else heat).astype(np.float32)


def overlay_png(image: np.ndarray, heat: np.ndarray, scale: int = 1) -> bytes:
    """The heatmap in warm colours over the grayscale 28x28 input, as PNG bytes."""
    gray = np.repeat(np.clip(image, 0, 1)[..., np.newaxis] * 0.6, 3, axis=-1)
    # A black-red-yellow ramp: red from the first half of the heat, green (yellow) from the rest.
    colour = np.stack([np.clip(heat * 2, 0, 1), np.clip(heat * 2 - 1, 0, 1), np.zeros_like(heat)], axis=-1)
    alpha = (0.75 * heat)[..., np.newaxis]
    pixels = (gray * (1 - alpha) + colour * alpha) * 255
    picture = Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8), mode="RGB")
    if scale > 1:
        picture = picture.resize((28 * scale, 28 * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
