"""Word vectors of a word2vec run: nearest neighbours, analogies, scores, projector export.

    python -m scripts.embeddings --workdir runs/head500_sg --neighbours=war,music,king
    python -m scripts.embeddings --workdir runs/head500_sg --analogies=man:king:woman
    python -m scripts.embeddings --workdir runs/head500_sg --scores
    python -m scripts.embeddings --workdir runs/head500_sg --export   # -> WORKDIR/projector
    tensorboard --logdir runs/head500_sg/projector                     # tab 'Projector'

Reads the latest checkpoint's input vectors and the vocabulary of the run's config.json
(jaxlab.analysis.embeddings.load_word_vectors). `--analogies a:b:c` answers "a is to b as
c is to ?" by 3CosAdd; `--scores` prints WordSim-353 Spearman and analogy accuracy with
their coverage (gensim's test files); `--export` writes vectors.tsv, metadata.tsv (word,
count) and projector_config.pbtxt into `--export_dir` (default WORKDIR/projector; no sprite:
sprites are thumbnails of image embeddings). Exit status 2 with one line for bad input.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from scripts.cli import fail, parse_flags_or_fail, quiet_library_logs  # noqa: E402

flags.DEFINE_string("workdir", None, "A word2vec run's workdir.", required=True)
flags.DEFINE_list("neighbours", [], "Words whose nearest neighbours to print.")
flags.DEFINE_integer("topn", 8, "Neighbours or answers per query.")
flags.DEFINE_list("analogies", [], "Analogy queries a:b:c (a is to b as c is to ?).")
flags.DEFINE_bool("scores", False, "Print WordSim-353 and analogy scores.")
flags.DEFINE_bool("export", False, "Write the TensorBoard projector files.")
flags.DEFINE_string("export_dir", None, "Where --export writes (default WORKDIR/projector).")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if not os.path.isdir(FLAGS.workdir):
        fail(f"--workdir {FLAGS.workdir} is not a directory")
    if FLAGS.topn < 1:
        fail(f"--topn must be >= 1, got {FLAGS.topn}")
    queries = [q.split(":") for q in FLAGS.analogies]
    if any(len(q) != 3 for q in queries):
        fail("--analogies takes a:b:c queries (three words joined by ':')")
    quiet_library_logs()
    from jaxlab.analysis import embeddings as emb
    from jaxlab.config import ConfigError
    from jaxlab.data.word2vec import gensim_test_data

    try:
        wv = emb.load_word_vectors(FLAGS.workdir)
    except ConfigError as e:
        fail(str(e))
    print(f"{FLAGS.workdir}: step {wv.step}, {len(wv.words)} words x {wv.vectors.shape[1]}")
    if FLAGS.neighbours:
        print(emb.neighbours_text(wv.vectors, wv.words, FLAGS.neighbours, FLAGS.topn))
    for a, b, c in queries:
        try:
            found = emb.analogy(wv.vectors, wv.words, a, b, c, FLAGS.topn)
        except KeyError as e:
            print(f"{a}:{b}::{c}:? -- {e.args[0]}")
            continue
        print(f"{a}:{b}::{c}:? " + ", ".join(f"{w} ({s:.2f})" for w, s in found))
    if FLAGS.scores:
        pairs = emb.read_word_pairs(gensim_test_data("wordsim353.tsv"))
        sim = emb.word_similarity(wv.vectors, wv.words, pairs)
        questions = emb.read_analogies(gensim_test_data("questions-words.txt"))
        ana = emb.analogy_accuracy(wv.vectors, wv.words, questions)
        print(
            f"WordSim-353 Spearman {sim['spearman']:.4f} (Pearson {sim['pearson']:.4f}) on "
            f"{int(sim['pairs'])} pairs ({100 * sim['coverage']:.1f}% covered); analogies "
            f"3CosAdd {100 * ana['accuracy']:.2f}% on {int(ana['questions'])} questions "
            f"({100 * ana['coverage']:.1f}% covered)"
        )
    if FLAGS.export:
        out = FLAGS.export_dir or os.path.join(FLAGS.workdir, "projector")
        paths = emb.export_projector(out, wv.vectors, wv.words, wv.counts, "word2vec/input")
        print("wrote " + ", ".join(paths.values()))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags_or_fail)
