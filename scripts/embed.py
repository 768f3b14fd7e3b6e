"""Exports a representation run's embeddings: TensorBoard projector files and a 2-D picture.

    python -m scripts.embed --workdir runs/digits_triplet
    python -m scripts.embed --workdir runs/digits_triplet --split train --method pca
    tensorboard --logdir runs/digits_triplet/projector      # tab 'Projector'

Embeds every example of --split ('eval' or 'train') with the latest checkpoint of --workdir
(the task's `embed`: metric_learning, simclr, ...), writes `vectors.tsv`, `metadata.tsv`
(the labels), `sprite.png` and `projector_config.pbtxt` into --out (default
WORKDIR/projector), and `embedding_<method>.png`, a scatter of the 2-D t-SNE (or PCA, or
the embedding itself when it is 2-D: 'none') coloured by label, into the same folder.
With --knn3 it also prints the kNN (k = 3) accuracy of scikit-learn's
KNeighborsClassifier fitted on the train split's embeddings and scored on the eval split's
(the score of scikit-learn's NCA example on `nca_digits`). Exit status 2 with one line for
bad input; nothing is written then.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from scripts.cli import fail, parse_flags_or_fail, quiet_library_logs  # noqa: E402

SPLITS = ("eval", "train")
METHODS = ("tsne", "pca", "none")

flags.DEFINE_string("workdir", None, "A representation run's workdir (with checkpoints).")
flags.DEFINE_string("split", "eval", f"Which split to embed: {', '.join(SPLITS)}.")
flags.DEFINE_string("method", "tsne", f"2-D projection of the picture: {', '.join(METHODS)}.")
flags.DEFINE_string("out", None, "Output folder (default: WORKDIR/projector).")
flags.DEFINE_bool("knn3", False, "Also print scikit-learn's kNN (k=3) train -> eval accuracy.")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.workdir:
        fail("--workdir is required (a finished representation run)")
    if not os.path.isdir(FLAGS.workdir):
        fail(f"--workdir {FLAGS.workdir} is not a directory")
    if FLAGS.split not in SPLITS:
        fail(f"unknown --split {FLAGS.split!r}; valid choices: {', '.join(SPLITS)}")
    if FLAGS.method not in METHODS:
        fail(f"unknown --method {FLAGS.method!r}; valid choices: {', '.join(METHODS)}")
    quiet_library_logs()

    from jaxlab.analysis.embedding_plots import (
        export_image_projector,
        scatter_2d,
        workdir_embeddings,
    )
    from jaxlab.config import ConfigError

    out = FLAGS.out or os.path.join(FLAGS.workdir, "projector")
    try:
        print(f"embedding the {FLAGS.split} split of {FLAGS.workdir} ...", flush=True)
        features, labels, images = workdir_embeddings(FLAGS.workdir, FLAGS.split)
        if FLAGS.method == "none" and features.shape[1] != 2:
            fail(f"--method none needs a 2-D embedding; this one is {features.shape[1]}-D")
        train = workdir_embeddings(FLAGS.workdir, "train") if FLAGS.knn3 else None
    except ConfigError as e:
        fail(str(e))
    print(f"{len(features)} embeddings of dimension {features.shape[1]}", flush=True)
    paths = export_image_projector(out, features, labels, images)
    png = os.path.join(out, f"embedding_{FLAGS.method}.png")
    print(f"projecting with {FLAGS.method} ...", flush=True)
    scatter_2d(features, labels, png, FLAGS.method)
    for name, path in {**paths, "plot": png}.items():
        print(f"{name}: {path}")
    if train is not None:
        from jaxlab.analysis.metric_baselines import knn3_accuracy

        if FLAGS.split != "eval":
            features, labels, _ = workdir_embeddings(FLAGS.workdir, "eval")
        accuracy = knn3_accuracy(train[0], train[1], features, labels)
        print(f"kNN (k=3, scikit-learn) train -> eval accuracy: {accuracy:.4f}")


if __name__ == "__main__":
    app.run(main, argv=parse_flags_or_fail(sys.argv))
