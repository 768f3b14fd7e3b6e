"""Colour overlays of segmentation maps (numpy, host): what the `overlay` evaluator of the
segmentation task writes to TensorBoard and as PNG.

`palette(n)` is PASCAL VOC's colour map (class c's RGB from the bits of c, interleaved), so
class 0 is black and the first classes are red, green, yellow, blue...; the ignore label
255 is drawn white.
"""

from __future__ import annotations

import numpy as np

IGNORE = 255


def palette(num_classes: int) -> np.ndarray:
    """uint8 [num_classes, 3]: the PASCAL VOC colour map (bit k of c sets bit 7 - k // 3 of
    channel k % 3)."""
    colours = np.zeros((num_classes, 3), np.uint8)
    for c in range(num_classes):
        value, r, g, b = c, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colours[c] = (r, g, b)
    return colours


def colorize(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """float32 [..., 3] in [0, 1]: the palette colour of each label (white for 255)."""
    table = np.concatenate([palette(num_classes), np.full((1, 3), 255, np.uint8)]) / 255.0
    index = np.where(np.asarray(labels) < num_classes, labels, num_classes)
    return table[index.astype(np.int64)].astype(np.float32)


def overlay(
    images: np.ndarray, labels: np.ndarray, num_classes: int, alpha: float = 0.5
) -> np.ndarray:
    """Images [..., H, W, 3] in [0, 1] blended with the colours of `labels` [..., H, W]:
    (1 - alpha) * image + alpha * colour."""
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return (1 - alpha) * images + alpha * colorize(labels, num_classes)


def overlay_grid(
    images: np.ndarray, predictions: np.ndarray, targets: np.ndarray, num_classes: int
) -> np.ndarray:
    """float32 [N, H, 3W, 3]: per example, the image, the prediction overlay and the target
    overlay side by side."""
    shown = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    if shown.shape[-1] == 1:
        shown = np.repeat(shown, 3, axis=-1)
    return np.concatenate(
        [shown, overlay(shown, predictions, num_classes), overlay(shown, targets, num_classes)],
        axis=2,
    )


def unnormalize(images: np.ndarray, dataset: str) -> np.ndarray:
    """Normalized images back to [0, 1] with the dataset's mean and std
    (`jaxlab.data.preprocess.NORMALIZATION`); unchanged when the dataset has none."""
    from jaxlab.data.preprocess import NORMALIZATION

    norm = NORMALIZATION.get(dataset)
    if norm is None:
        return np.asarray(images)
    return np.asarray(images) * np.asarray(norm.std) + np.asarray(norm.mean)
