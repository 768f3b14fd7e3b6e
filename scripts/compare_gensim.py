"""jaxlab's word2vec against gensim's `Word2Vec` on the same corpus, vocabulary and settings.

    python -m scripts.compare_gensim                                  # skip-gram and CBOW, seed 0
    python -m scripts.compare_gensim --models=skipgram --seeds=0,1,2 --epochs=10
    python -m scripts.compare_gensim --workdir_root=runs/w2v_compare  # keep (and reuse) the runs

For each model (skipgram: gensim sg=1; cbow: sg=0, cbow_mean=1) and seed, trains gensim on
head500 (`LineSentence` of the same file) with the settings of configs/head500_<model>.py:
min_count, vector_size = model.embed_dim, window, negative, sample, ns_exponent, epochs,
alpha = optimizer.learning_rate, min_alpha = alpha * schedule.alpha, `--workers` threads
and `seed`; then trains jaxlab with that config (seed and epochs overridden, evaluators at the
end only) in `--workdir_root/<model>_seed<k>` (a temporary directory when not given; an
existing finished run there is reused, not retrained). Both sets of input vectors are scored
by the same functions (jaxlab.analysis.embeddings): WordSim-353 Spearman (pairs with both
words in the vocabulary) and 3CosAdd accuracy on questions-words.txt (questions with all
four words in the vocabulary), with their coverage; gensim's own `evaluate_word_pairs`
Spearman is printed beside as a cross-check. The script first checks that the two
vocabularies are the same words in the same order.

The issue's target: jaxlab within 0.05 of gensim's WordSim-353 Spearman, or better (the
last lines compare the means over the seeds). Exit status 2 with one line for bad input.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from scripts.cli import fail, parse_flags_or_fail, quiet_library_logs  # noqa: E402

MODELS = ("skipgram", "cbow")
TARGET_GAP = 0.05
flags.DEFINE_list("models", list(MODELS), "Models to compare: skipgram, cbow.")
flags.DEFINE_list("seeds", ["0"], "Seeds (integers) of both implementations.")
flags.DEFINE_integer("epochs", 0, "Epochs of both (0: the config's).")
flags.DEFINE_integer("workers", 1, "gensim's worker threads (1 or 2 keep it close to serial).")
flags.DEFINE_string("workdir_root", None, "Where the jaxlab runs go (default: a temp dir).")
FLAGS = flags.FLAGS


def _config(model: str, seed: int, epochs: int):
    from configs.head500_skipgram import word2vec_config

    config = word2vec_config(model)
    config.seed = seed
    if epochs:
        config.num_epochs = epochs
    for name in config.evaluators:
        config.evaluators[name].every_steps = 0
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 0
    return config


def _gensim(config, sentences, workers: int):
    """gensim's Word2Vec with the config's settings: (index_to_key, vectors, its own
    WordSim Spearman, seconds)."""
    from gensim.models import Word2Vec

    from jaxlab.data.word2vec import gensim_test_data

    start = time.time()
    model = Word2Vec(
        sentences,
        sg=1 if config.model.name == "skipgram" else 0,
        cbow_mean=1,
        hs=0,
        vector_size=config.model.embed_dim,
        window=config.dataset.window,
        min_count=config.dataset.min_count,
        sample=config.dataset.sample,
        negative=config.task.negatives,
        ns_exponent=config.task.noise_exponent,
        alpha=config.optimizer.learning_rate,
        min_alpha=config.optimizer.learning_rate * config.schedule.alpha,
        epochs=config.num_epochs,
        workers=workers,
        seed=config.seed,
    )
    seconds = time.time() - start
    _, spearman, _ = model.wv.evaluate_word_pairs(gensim_test_data("wordsim353.tsv"))
    return list(model.wv.index_to_key), model.wv.vectors, float(spearman.statistic), seconds


def _jaxlab(config, workdir: str):
    """Trains (or reuses) a jaxlab run: (input vectors, seconds)."""
    from jaxlab.config import ConfigError
    from jaxlab.train import NonFiniteLossError, train_and_evaluate
    from jaxlab.train.transfer import load_pretrained

    start = time.time()
    try:
        train_and_evaluate(config, workdir)
    except ConfigError as e:
        fail(str(e))
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    seconds = time.time() - start
    params = load_pretrained(workdir)["params"]
    return params["input_embed"]["embedding"], seconds


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
    bad = [m for m in FLAGS.models if m not in MODELS]
    if bad:
        fail(f"unknown model {bad[0]!r}; valid choices: {', '.join(MODELS)}")
    try:
        seeds = [int(s) for s in FLAGS.seeds]
    except ValueError:
        fail(f"--seeds must be integers, got {','.join(FLAGS.seeds)}")
    if FLAGS.epochs < 0 or FLAGS.workers < 1:
        fail("--epochs must be >= 0 and --workers >= 1")
    quiet_library_logs()
    logging.getLogger("gensim").setLevel(logging.WARNING)

    from gensim.models.word2vec import LineSentence

    from jaxlab.analysis import embeddings as emb
    from jaxlab.data.word2vec import WORD2VEC_SOURCES, gensim_test_data

    pairs = emb.read_word_pairs(gensim_test_data("wordsim353.tsv"))
    questions = emb.read_analogies(gensim_test_data("questions-words.txt"))
    sentences = LineSentence(gensim_test_data("head500.noblanks.cor"))
    root = FLAGS.workdir_root or tempfile.mkdtemp(prefix="jaxlab-w2v-")
    rows, spearman = [], {}
    for model in FLAGS.models:
        for seed in seeds:
            config = _config(model, seed, FLAGS.epochs)
            words = WORD2VEC_SOURCES["head500"].vocabulary(config).words
            keys, g_vectors, g_own, g_seconds = _gensim(config, sentences, FLAGS.workers)
            if tuple(keys) != words:
                fail(f"the vocabularies differ: gensim {len(keys)} words, jaxlab {len(words)}")
            j_vectors, j_seconds = _jaxlab(config, os.path.join(root, f"{model}_seed{seed}"))
            for impl, vectors, seconds in (
                ("gensim", g_vectors, g_seconds),
                ("jaxlab", j_vectors, j_seconds),
            ):
                sim = emb.word_similarity(vectors, words, pairs)
                ana = emb.analogy_accuracy(vectors, words, questions)
                spearman.setdefault((model, impl), []).append(sim["spearman"])
                own = f"{g_own:.4f}" if impl == "gensim" else "-"
                rows.append(
                    f"{model:8s}  {impl:6s}  {seed:4d}  {sim['spearman']:8.4f}  {own:>8s}  "
                    f"{100 * sim['coverage']:5.1f}%  {100 * ana['accuracy']:6.2f}%  "
                    f"{100 * ana['coverage']:5.1f}%  {seconds:7.1f}"
                )
            print(rows[-2] + "\n" + rows[-1], flush=True)
    epochs = FLAGS.epochs or _config(FLAGS.models[0], 0, 0).num_epochs
    print(
        f"\nhead500 ({len(words)} words, min_count 5), {epochs} epochs, gensim workers="
        f"{FLAGS.workers}; jaxlab runs in {root}"
    )
    print(
        "model     impl    seed  WordSim   (gensim's  cover   analogy  cover   seconds\n"
        "                        Spearman   own)                3CosAdd"
    )
    print("\n".join(rows))
    for model in FLAGS.models:
        g = statistics.mean(spearman[(model, "gensim")])
        j = statistics.mean(spearman[(model, "jaxlab")])
        verdict = "yes" if j >= g - TARGET_GAP else "no"
        print(
            f"{model}: mean WordSim Spearman over {len(seeds)} seed(s): gensim {g:.4f}, "
            f"jaxlab {j:.4f} (difference {j - g:+.4f}); within {TARGET_GAP} or better: {verdict}"
        )


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags_or_fail)
