"""The per-pixel classical baseline of segmentation: k-nearest-neighbour classification of
each pixel from the colours of its 3x3 neighbourhood (27 numbers), fitted on a random
subset of the train split's labelled pixels (scikit-learn's `KNeighborsClassifier`).

It sees colour and the immediate texture, never the shape of an object: on `seg_digits`
(the class is the glyph's shape, its colour random) it finds ink but cannot name the
digit, which is what a segmentation network has to beat.
"""

from __future__ import annotations

import numpy as np


def patch_features(images: np.ndarray, radius: int = 1) -> np.ndarray:
    """float32 [N, H, W, (2r+1)^2 * C]: each pixel's (2r+1)x(2r+1) neighbourhood (edge
    padded), images scaled to [0, 1] when uint8."""
    x = np.asarray(images, np.float32)
    if np.asarray(images).dtype == np.uint8:
        x = x / 255.0
    h, w = x.shape[1:3]
    padded = np.pad(x, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="edge")
    shifts = [
        padded[:, dy : dy + h, dx : dx + w]
        for dy in range(2 * radius + 1)
        for dx in range(2 * radius + 1)
    ]
    return np.concatenate(shifts, axis=-1)


def knn_pixel_predictions(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    num_classes: int,
    *,
    k: int = 5,
    max_train_pixels: int = 20_000,
    radius: int = 1,
    seed: int = 0,
) -> np.ndarray:
    """Predicted labels [N, H, W] of the test images by k-NN on `patch_features` of at most
    `max_train_pixels` labelled train pixels (labels in [0, num_classes))."""
    from sklearn.neighbors import KNeighborsClassifier

    feats = patch_features(train_images, radius)
    labels = np.asarray(train_labels)
    keep = labels < num_classes
    x, y = feats[keep], labels[keep]
    rng = np.random.default_rng(seed)
    if len(y) > max_train_pixels:
        pick = rng.choice(len(y), max_train_pixels, replace=False)
        x, y = x[pick], y[pick]
    model = KNeighborsClassifier(n_neighbors=k).fit(x, y)
    test = patch_features(test_images, radius)
    return model.predict(test.reshape(-1, test.shape[-1])).reshape(test.shape[:3])
