"""The per-pixel classical baseline of a generated segmentation set (its mIoU to beat).

    python -m scripts.seg_baseline                      # seg_digits, k=5, 20000 train pixels
    python -m scripts.seg_baseline --dataset=shapes_seg --k=1

k-NN of each test pixel from its 3x3 colour neighbourhood, fitted on labelled train pixels
(`jaxlab.analysis.seg_baseline`); prints mIoU (classes present), pixel accuracy,
frequency-weighted IoU and the per-class IoU table, from the same confusion-matrix code as
the segmentation task.
"""

from __future__ import annotations

from absl import app, flags

from scripts.cli import fail, parse_flags_or_fail

FLAGS = flags.FLAGS
DATASETS = ("seg_digits", "shapes_seg")
flags.DEFINE_string("dataset", "seg_digits", f"One of {', '.join(DATASETS)}.")
flags.DEFINE_integer("k", 5, "Neighbours.")
flags.DEFINE_integer("max_train_pixels", 20_000, "Train pixels sampled as the memory.")


def main(argv: list[str]) -> None:
    """Prints the baseline's metrics."""
    del argv
    if FLAGS.dataset not in DATASETS:
        fail(f"unknown --dataset {FLAGS.dataset!r}; valid choices: {', '.join(DATASETS)}")
    if FLAGS.k < 1 or FLAGS.max_train_pixels < FLAGS.k:
        fail("--k must be >= 1 and --max_train_pixels >= --k")
    import jax.numpy as jnp
    import numpy as np

    from jaxlab.analysis.seg_baseline import knn_pixel_predictions
    from jaxlab.metrics import ConfusionMatrix
    from jaxlab.tasks.segmentation import frequency_weighted_iou, iou_table

    if FLAGS.dataset == "seg_digits":
        from jaxlab.data.seg_digits import NUM_CLASSES
        from jaxlab.data.seg_digits import load_seg_digits_split as load
    else:
        from jaxlab.data.generated import SHAPES_CLASSES as NUM_CLASSES
        from jaxlab.data.shapes_seg import load_shapes_seg_split as load
    train, test = load("train"), load("test")
    print(
        f"{FLAGS.dataset}: fitting k-NN (k={FLAGS.k}) on {FLAGS.max_train_pixels} pixels",
        flush=True,
    )
    pred = knn_pixel_predictions(
        train["image"],
        train["label"],
        test["image"],
        NUM_CLASSES,
        k=FLAGS.k,
        max_train_pixels=FLAGS.max_train_pixels,
    )
    m = ConfusionMatrix.from_predictions(
        jnp.asarray(pred.astype(np.int32)),
        jnp.asarray(test["label"].astype(np.int32)),
        NUM_CLASSES,
    )
    out = m.compute()
    print(
        f"mIoU {out['mean_iou']:.4f}  pixel accuracy {out['pixel_accuracy']:.4f}  "
        f"fw IoU {frequency_weighted_iou(np.asarray(m.matrix)):.4f}"
    )
    print(iou_table(np.asarray(m.matrix)))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags_or_fail)
