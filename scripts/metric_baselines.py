"""The references of scikit-learn's NCA example on its digits split, computed by its procedure.

    python -m scripts.metric_baselines            # raw pixels, PCA, LDA, NCA (2-D)
    python -m scripts.metric_baselines --dims 2,32

Prints, per dimension, the kNN (k = 3) test accuracy of each reducer fitted on the train half
(`jaxlab.analysis.metric_baselines`: StandardScaler then PCA / LDA / NCA, the stratified
50/50 split with seed 0), and of kNN on the raw 64 pixels, as a markdown table. The trained
triplet embeddings are scored on the same split by the `knn` evaluator of
configs/digits_triplet.py (or `python -m scripts.embed --workdir W --knn3`). Exit status 2
with one line for bad input.
"""

from __future__ import annotations

import sys

from absl import app, flags

from scripts.cli import fail, parse_flags_or_fail, quiet_library_logs

flags.DEFINE_string("dims", "2", "Comma-separated embedding dimensions (LDA keeps at most 9).")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        dims = [int(d) for d in FLAGS.dims.split(",")]
    except ValueError:
        fail(f"--dims must be comma-separated integers in [1, 64], got {FLAGS.dims!r}")
    if not dims or any(not 1 <= d <= 64 for d in dims):
        fail(f"--dims must be comma-separated integers in [1, 64], got {FLAGS.dims!r}")
    quiet_library_logs()
    from jaxlab.analysis.metric_baselines import nca_example_scores

    print("| features | dim | kNN (k=3) test accuracy |\n|---|---|---|")
    raw_done = False
    for d in dims:
        print(f"fitting the {d}-D reducers (NCA takes a few seconds) ...", file=sys.stderr)
        scores = nca_example_scores(d)
        if not raw_done:
            print(f"| raw pixels | 64 | {scores['raw']:.3f} |")
            raw_done = True
        for name in ("pca", "lda", "nca"):
            dim = min(d, 9) if name == "lda" else d
            print(f"| StandardScaler + {name.upper()} | {dim} | {scores[name]:.3f} |", flush=True)


if __name__ == "__main__":
    app.run(main, argv=parse_flags_or_fail(sys.argv))
