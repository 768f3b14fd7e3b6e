"""Helpers shared by the data tests."""

import tensorflow as tf

from jaxlab.data.features import Feature


def image_features(image: tf.Tensor) -> dict[str, Feature]:
    """The spec of an example holding only `image`."""
    return {"image": Feature(tuple(image.shape), "float32", "image")}


def on_image(op, image: tf.Tensor, seed: tf.Tensor, *args, **kwargs) -> tf.Tensor:
    """An augmentation op applied to an example holding only `image`; the image it returns."""
    return op({"image": image}, seed, image_features(image), *args, **kwargs)["image"]
