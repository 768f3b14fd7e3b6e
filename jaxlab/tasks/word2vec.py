"""Word2vec: skip-gram or CBOW with negative sampling, trained by word2vec's sparse SGD.

Objective (Mikolov et al. 2013b). For a hidden vector h (skip-gram: a context word's input
vector; CBOW: the mean of the context words' input vectors, see jaxlab.models.word2vec), the
positive word p (the center word) and K negatives n_1..n_K drawn from the unigram^0.75
distribution (`task.noise_exponent`; negatives equal to p are skipped, as gensim does):

    loss(h) = -log sigmoid(h . v_p) - sum_k log sigmoid(-h . v_{n_k})

with v the output vectors. The train loss is the *sum* over the batch's pairs (skip-gram)
or examples (CBOW); the logged `loss` is its mean per pair / example.

Update: plain SGD on the rows that the batch touches, as word2vec.c and gensim do, with
the learning rate of `config.schedule` (gensim's decays linearly from `alpha` 0.025 to
`min_alpha` 1e-4: `schedule.name='linear'`, `schedule.alpha=0.004`). The step gathers the
input rows of the context words and the output rows of the candidates, takes the gradient
of the loss with respect to those gathered rows (`jax.value_and_grad`), and adds
`-lr * gradient` back into the two tables with `.at[ids].add` (a scatter-add: a row
gathered several times receives the sum of its updates). The tables are never touched
elsewhere, so the step costs O(batch * K * D), not O(V * D), and needs no optimizer state;
optax's transformations would instead see a dense [V, D] gradient and update every row
(and any momentum or Adam statistics would decay rows the batch never saw). Hence the task
owns its train step and `config.optimizer` must be plain `sgd` (its rate and schedule are
used; weight decay, clipping, accumulation and EMA are refused).

Where the minibatch differs from word2vec's per-pair updates: word2vec applies each pair's
update before scoring the next; here all the batch's pairs are scored with the same tables,
then their updates are summed (like word2vec's Hogwild threads, on a larger scale). The
examples of an epoch are shuffled (`dataset.shuffle_buffer > 0`), so a batch holds
windows from all over the corpus rather than 1,024 consecutive ones, which keeps repeated
rows in a batch to the frequent words (gensim walks the corpus in order). The rate decays
with the step (gensim: with the words processed; the same line). Two choices follow gensim
exactly:
- scores with |h . v| >= `task.max_exp` (6, word2vec's MAX_EXP) contribute no gradient
  (word2vec skips them; 0 turns this off); sigmoids are exact rather than its 1000-entry
  table;
- CBOW adds the whole gradient of h to every context word's input vector (word2vec's and
  gensim's `cbow_mean=1` update), not the 1/count share that differentiating the mean gives.

Negatives are drawn on the device from the step's 'negatives' rng stream (`fold_in(run key,
step)`, so a resumed run draws the same ones) by the inverse CDF of the noise distribution
(`draw_negatives`). Under pmap every device gathers the whole batch's row ids and updates
(`ctx.all_gather`) and applies them all, so the replicas stay equal; its negatives come from
the device-folded key, so a pmap run is another draw than a jit run. Under jit the tables
after a few steps on 1 and on 2 devices agree to 3e-8 (the smoke config at rate 2.0).

`config.task` keys: `negatives` (K, 5), `noise_exponent` (0.75), `max_exp` (6.0).
Evaluators (`config.evaluators.<name>`, each with `every_steps`, 0 = at the end only):
- `wordsim`: Spearman/Pearson on WordSim-353 (`path`: '' = gensim's wordsim353.tsv),
  with its coverage (jaxlab.analysis.embeddings.word_similarity);
- `analogies`: 3CosAdd accuracy on questions-words.txt (`path`, `restrict_vocab` 30000),
  with its coverage;
- `neighbours`: the nearest neighbours of `words` (comma-separated; `topn`), as text.
All read the input vectors (gensim's `wv.vectors`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from clu import metrics as clu_metrics

from jaxlab import data
from jaxlab.analysis import embeddings
from jaxlab.config import ConfigError, check_positive
from jaxlab.data.word2vec import gensim_test_data, noise_distribution
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.models.word2vec import INPUT_TABLE, OUTPUT_TABLE, Word2Vec
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, Task, TaskSetup

DEFAULTS = {"negatives": 5, "noise_exponent": 0.75, "max_exp": 6.0}
DEFAULT_NEIGHBOUR_WORDS = "war,music,king,physic,french,church,comput,film"


@flax.struct.dataclass
class Word2VecState:
    """The two tables: {'input_embed': {'embedding'}, 'output_embed': {'embedding'}}."""

    params: PyTree


def negative_sampling_loss(scores: jax.Array, weights: jax.Array) -> jax.Array:
    """Per pair: `sum_k weights_k * -log sigmoid(s_k * sign_k)` over the last axis of
    `scores` [..., K], where candidate 0 is the positive (sign +1) and the others are the
    negatives (sign -1); `weights` [..., K] (0 drops a candidate)."""
    sign = jnp.where(jnp.arange(scores.shape[-1]) == 0, 1.0, -1.0).astype(scores.dtype)
    return jnp.sum(weights * -jax.nn.log_sigmoid(sign * scores), axis=-1)


def draw_negatives(key: jax.Array, cdf: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """int32 word ids of `shape` drawn from the distribution of cumulative sums `cdf` [V]
    (inverse CDF: the first id whose cdf exceeds u * cdf[-1], u uniform in [0, 1)).

    What `jax.random.choice(key, V, shape, p=...)` does, with the 'scan_unrolled' binary
    search, about twice as fast on XLA:CPU as choice's default 'scan' (8 ms against 18 ms
    for 51k draws from 7,978 words); gensim bisects its cumulative table the same way.
    """
    u = jax.random.uniform(key, shape, jnp.float32) * cdf[-1]
    ids = jnp.searchsorted(cdf, u, side="right", method="scan_unrolled")
    return jnp.minimum(ids, cdf.shape[0] - 1).astype(jnp.int32)


class Word2VecTask(Task):
    """Skip-gram / CBOW with negative sampling and sparse SGD (see the module docstring).

    Args:
      model: a `Word2Vec` module (mode 'skipgram' or 'cbow').
      schedule: the learning rate by step.
      noise: float [V], the negative-sampling distribution.
      negatives: K, negatives per pair (skip-gram) or per example (CBOW).
      max_exp: scores beyond +-max_exp get no gradient (0: no limit).
      words: the vocabulary, by id (for the evaluators).
      counts: the words' corpus counts.
    """

    name = "word2vec"
    rng_streams = ("params", "negatives")
    train_metric_names = ("loss", "learning_rate")
    eval_metric_names = ("loss",)

    def __init__(
        self,
        *,
        model: Word2Vec,
        schedule: Callable[[jax.Array], jax.Array],
        noise: np.ndarray,
        negatives: int,
        max_exp: float,
        words: tuple[str, ...],
        counts: np.ndarray,
    ) -> None:
        self.model = model
        self.schedule = schedule
        self.noise = np.asarray(noise, np.float64)
        self.noise_cdf = np.cumsum(self.noise).astype(np.float32)
        self.negatives = negatives
        self.max_exp = max_exp
        self.words = words
        self.counts = counts

    # --- pieces ------------------------------------------------------------------------

    def candidates(self, batch: Batch, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(candidate ids, weights): the center word then K negatives, per pair [B, S, 1+K]
        (skip-gram) or per example [B, 1+K] (CBOW); weight 0 for a masked slot, an example
        without context, and a negative equal to the center word."""
        center, mask = batch["center"], batch["context_mask"]
        if self.model.mode == "skipgram":
            shape, valid = mask.shape, mask > 0
        else:
            shape, valid = mask.shape[:1], jnp.any(mask > 0, axis=-1)
        negatives = draw_negatives(key, jnp.asarray(self.noise_cdf), (*shape, self.negatives))
        positive = jnp.broadcast_to(center.reshape(center.shape + (1,) * len(shape)), (*shape, 1))
        ids = jnp.concatenate([positive, negatives], axis=-1)
        weights = valid[..., None] & ((ids != positive) | (jnp.arange(ids.shape[-1]) == 0))
        return ids, weights.astype(jnp.float32)

    def _pair_mask(self, batch: Batch) -> jax.Array:
        """The pairs (skip-gram [B, S]) or examples (CBOW [B]) that count."""
        mask = batch["context_mask"] > 0
        return mask if self.model.mode == "skipgram" else jnp.any(mask, axis=-1)

    def _tables(self, params: PyTree) -> tuple[jax.Array, jax.Array]:
        return params[INPUT_TABLE]["embedding"], params[OUTPUT_TABLE]["embedding"]

    # --- protocol ----------------------------------------------------------------------

    def init_state(self, batch: Batch, ctx: StepContext) -> Word2VecState:
        """Both tables initialized as gensim does (input uniform/D, output zero)."""
        ids, _ = self.candidates(
            {k: batch[k][:1] for k in ("center", "context_mask")}, jax.random.key(0)
        )
        variables = self.model.init(
            ctx.rng("params"), batch["context"][:1], batch["context_mask"][:1], ids
        )
        return Word2VecState(params=variables["params"])

    def train_step(
        self, state: Word2VecState, batch: Batch, ctx: StepContext
    ) -> tuple[Word2VecState, Metrics]:
        """One sparse SGD step (see the module docstring)."""
        lr = jnp.asarray(self.schedule(ctx.step), jnp.float32)
        ids, weights = self.candidates(batch, ctx.rng("negatives"))
        context, mask = batch["context"], batch["context_mask"]
        inputs, outputs = self._tables(state.params)
        hidden = self.model.apply({}, inputs[context], mask, method="hidden")

        def objective(h: jax.Array, rows: jax.Array) -> tuple[jax.Array, jax.Array]:
            scores = self.model.apply({}, h, rows, method="scores")
            w = weights
            if self.max_exp > 0:  # word2vec skips the scores beyond +-MAX_EXP
                w = w * (jnp.abs(jax.lax.stop_gradient(scores)) < self.max_exp)
            return jnp.sum(negative_sampling_loss(scores, w)), scores

        (_, scores), (g_hidden, g_rows) = jax.value_and_grad(
            objective, argnums=(0, 1), has_aux=True
        )(hidden, outputs[ids])
        if self.model.mode == "cbow":  # word2vec: the whole gradient to every context word
            g_hidden = g_hidden[:, None, :]
        g_inputs = g_hidden * mask[..., None]
        context, g_inputs, ids, g_rows = (
            ctx.all_gather(x) for x in (context, g_inputs, ids, g_rows)
        )
        params = {
            INPUT_TABLE: {"embedding": inputs.at[context].add(-lr * g_inputs)},
            OUTPUT_TABLE: {"embedding": outputs.at[ids].add(-lr * g_rows)},
        }
        loss = negative_sampling_loss(scores, weights)
        metrics = {
            "loss": average(loss, self._pair_mask(batch)),
            "learning_rate": clu_metrics.LastValue(total=lr, count=jnp.ones((), jnp.int32)),
        }
        return Word2VecState(params=params), metrics

    def eval_step(
        self, state: Word2VecState, batch: Batch, carry: PyTree, ctx: StepContext
    ) -> tuple[PyTree, Metrics]:
        """The mean negative-sampling loss per pair (skip-gram) or example (CBOW) of the
        real eval windows, negatives from the eval rng."""
        ids, weights = self.candidates(batch, ctx.rng("negatives"))
        scores = self.model.apply(
            {"params": state.params}, batch["context"], batch["context_mask"], ids
        )
        pairs = self._pair_mask(batch)
        real = pairs & (batch["mask"] > 0).reshape(batch["mask"].shape + (1,) * (pairs.ndim - 1))
        return carry, {"loss": average(negative_sampling_loss(scores, weights), real)}

    def variables(self, state: Word2VecState) -> dict[str, PyTree]:
        """{'params': the two tables}."""
        return {"params": state.params}

    def with_variables(self, state: Word2VecState, variables: Mapping[str, PyTree]) -> PyTree:
        """A state holding `variables['params']` (there is no optimizer state)."""
        return Word2VecState(params=variables["params"])

    def input_vectors(self, state: Word2VecState) -> np.ndarray:
        """The word vectors (input table) of a host state, as numpy [V, D]."""
        return np.asarray(state.params[INPUT_TABLE]["embedding"])

    def evaluators(self) -> dict[str, Callable[..., Any]]:
        return {
            "wordsim": wordsim_evaluator,
            "analogies": analogy_evaluator,
            "neighbours": neighbours_evaluator,
        }


# ---- evaluators -------------------------------------------------------------------------


@functools.cache
def _vector_evaluator_class() -> type:
    """The Evaluator class of the evaluators below (imported late: jaxlab.train imports
    jaxlab.tasks)."""
    from jaxlab.train.evaluation import Evaluator

    class VectorEvaluator(Evaluator):
        """Runs `score(vectors) -> EvalResult` on the host copy of the input vectors."""

        def __init__(
            self, name: str, every_steps: int, task: Word2VecTask, score: Callable[..., Any]
        ) -> None:
            self.name, self.every_steps = name, every_steps
            self.task, self.score = task, score

        def run(self, ctx: Any) -> Any:
            return self.score(self.task.input_vectors(ctx.host(ctx.state.task)), ctx.step)

    return VectorEvaluator


def _every(name: str, options: ml_collections.ConfigDict) -> int:
    every = options.get("every_steps", 0)
    check_positive(f"evaluators.{name}.every_steps", every, allow_zero=True, integer=True)
    return every


def wordsim_evaluator(
    task: Word2VecTask, setup: TaskSetup, options: ml_collections.ConfigDict
) -> Any:
    """`evaluators.wordsim`: WordSim-353 Spearman and Pearson, `coverage` and `pairs`."""
    from jaxlab.train.evaluation import EvalResult

    pairs = embeddings.read_word_pairs(
        options.get("path", "") or gensim_test_data("wordsim353.tsv")
    )

    def score(vectors: np.ndarray, step: int) -> Any:
        return EvalResult(scalars=embeddings.word_similarity(vectors, task.words, pairs))

    return _vector_evaluator_class()("wordsim", _every("wordsim", options), task, score)


def analogy_evaluator(
    task: Word2VecTask, setup: TaskSetup, options: ml_collections.ConfigDict
) -> Any:
    """`evaluators.analogies`: 3CosAdd accuracy, `coverage`, `correct` and `questions`."""
    from jaxlab.train.evaluation import EvalResult

    path = options.get("path", "") or gensim_test_data("questions-words.txt")
    questions = embeddings.read_analogies(path)
    restrict = options.get("restrict_vocab", embeddings.DEFAULT_RESTRICT_VOCAB)
    check_positive("evaluators.analogies.restrict_vocab", restrict, integer=True)

    def score(vectors: np.ndarray, step: int) -> Any:
        return EvalResult(
            scalars=embeddings.analogy_accuracy(vectors, task.words, questions, restrict)
        )

    return _vector_evaluator_class()("analogies", _every("analogies", options), task, score)


def neighbours_evaluator(
    task: Word2VecTask, setup: TaskSetup, options: ml_collections.ConfigDict
) -> Any:
    """`evaluators.neighbours`: the nearest neighbours of `words` as text (printed too)."""
    from jaxlab.train.evaluation import EvalResult

    queries = [w.strip() for w in options.get("words", DEFAULT_NEIGHBOUR_WORDS).split(",")]
    queries = [w for w in queries if w]
    topn = options.get("topn", 8)
    check_positive("evaluators.neighbours.topn", topn, integer=True)

    def score(vectors: np.ndarray, step: int) -> Any:
        text = embeddings.neighbours_text(vectors, task.words, queries, topn)
        print(f"nearest neighbours at step {step}:\n{text}", flush=True)
        return EvalResult(texts={"neighbours": text})

    return _vector_evaluator_class()("neighbours", _every("neighbours", options), task, score)


# ---- factory ----------------------------------------------------------------------------


def _check_optimizer(config: ml_collections.ConfigDict) -> None:
    o = config.optimizer
    if o.name != "sgd":
        raise ConfigError(
            f"task 'word2vec' trains with word2vec's sparse SGD: optimizer.name must be 'sgd', "
            f"got {o.name!r} (valid choices: sgd)"
        )
    for key, off in (
        ("weight_decay", 0.0),
        ("grad_clip_norm", 0.0),
        ("grad_clip_value", 0.0),
        ("ema_decay", 0.0),
        ("accumulate_steps", 1),
        ("frozen", ""),
        ("lr_multipliers", ""),
    ):
        if o.get(key, off) != off:
            raise ConfigError(
                f"task 'word2vec' does not support optimizer.{key} (set it to {off!r}, "
                f"got {o[key]!r})"
            )


def task_option(config: ml_collections.ConfigDict, key: str) -> Any:
    """`config.task.<key>` or its default (`DEFAULTS`)."""
    return config.task.get(key, DEFAULTS[key])


def make_word2vec_task(setup: TaskSetup) -> Word2VecTask:
    """Builds the word2vec task of `setup.config` (see the module docstring).

    Raises ConfigError for a model other than skipgram/cbow, a dataset without word2vec
    windows or vocabulary, an optimizer other than plain sgd, or bad task keys.
    """
    config, info = setup.config, setup.info
    if config.model.name not in ("skipgram", "cbow"):
        raise ConfigError(
            f"task 'word2vec' needs model 'skipgram' or 'cbow', got {config.model.name!r}"
        )
    source = data.get_source(config.dataset.name)
    if not hasattr(source, "vocabulary") or "context" not in info.features:
        raise ConfigError(
            f"task 'word2vec' needs a word2vec dataset (center, context windows, vocabulary); "
            f"{config.dataset.name!r} is not one (valid choices: head500)"
        )
    _check_optimizer(config)
    negatives = task_option(config, "negatives")
    check_positive("task.negatives", negatives, integer=True)
    exponent = task_option(config, "noise_exponent")
    check_positive("task.noise_exponent", exponent, allow_zero=True)
    max_exp = task_option(config, "max_exp")
    check_positive("task.max_exp", max_exp, allow_zero=True)
    kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
    if not kwargs.get("vocab_size"):
        kwargs["vocab_size"] = int(info.vocab_size)
    if kwargs["vocab_size"] != info.vocab_size:
        raise ConfigError(
            f"model.vocab_size {kwargs['vocab_size']} differs from the dataset's "
            f"{info.vocab_size} words; leave it 0"
        )
    model = build_model(config.model.name, kwargs)
    vocab = source.vocabulary(config)
    return Word2VecTask(
        model=model,
        schedule=setup.optimizer().schedule,
        noise=noise_distribution(vocab.counts, exponent),
        negatives=negatives,
        max_exp=float(max_exp),
        words=vocab.words,
        counts=vocab.counts,
    )
