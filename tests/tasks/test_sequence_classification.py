"""The sequence-classification task: its input feature, its metrics on padded token
sequences, its refusals, and a run through the loop (toy2d's 'x' vectors)."""

from __future__ import annotations

import tempfile

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxlab.config import ConfigError, default_config, finish_config
from jaxlab.data.features import DatasetInfo, Feature
from jaxlab.tasks import TaskSetup
from jaxlab.tasks.base import Optimizer, StepContext
from jaxlab.tasks.sequence_classification import (
    make_sequence_classification_task,
    sequence_input_key,
)
from tests.tasks.lm_test_models import TinySequenceClassifier  # noqa: F401  (registers)

TOKENS = Feature((5,), "int32", "tokens")
VECTORS = Feature((5, 2), "float32", "vector")
LABEL = Feature((), "int32", "label")


def token_info() -> DatasetInfo:
    features = {"inputs": TOKENS, "label": LABEL}
    return DatasetInfo("tokens", features, dict(features), 3, 8, 8, vocab_size=10)


def config(**task: object) -> ml_collections.ConfigDict:
    c = default_config()
    c.task.name, c.model.name = "sequence_classification", "test_sequence_classifier"
    c.task.update(task)
    return finish_config(c)


def setup(c: ml_collections.ConfigDict, info: DatasetInfo) -> TaskSetup:
    opt = Optimizer(tx=optax.sgd(0.1), schedule=optax.constant_schedule(0.1))
    return TaskSetup(c, info, 1, 1, None, {"default": opt})


def test_input_key_is_the_configured_or_the_first_present_feature():
    both = {"inputs": TOKENS, "x": VECTORS, "label": LABEL}
    assert sequence_input_key(ml_collections.ConfigDict(), both) == "inputs"
    assert sequence_input_key(ml_collections.ConfigDict(), {"x": VECTORS}) == "x"
    assert sequence_input_key(ml_collections.ConfigDict({"input_key": "x"}), both) == "x"
    with pytest.raises(ConfigError, match="task.input_key 'image'"):
        sequence_input_key(ml_collections.ConfigDict({"input_key": "image"}), both)
    with pytest.raises(ConfigError, match="needs an 'inputs' or 'x' feature"):
        sequence_input_key(ml_collections.ConfigDict(), {"label": LABEL})


def test_eval_metrics_of_padded_token_sequences():
    task = make_sequence_classification_task(setup(config(top_k=2), token_info()))
    assert task.model.vocab_size == 10 and task.model.num_classes == 3
    batch = {
        "inputs": np.array([[3, 4, 5, 0, 0], [6, 0, 0, 0, 0], [7, 8, 9, 3, 4], [0] * 5], np.int32),
        "label": np.array([0, 1, 2, 0], np.int32),
        "mask": np.array([1, 1, 1, 0], np.float32),  # the last example is padding
    }
    key = jax.random.key(0)
    ctx = StepContext(step=jnp.zeros((), jnp.int32), rngs={"params": key, "dropout": key})
    state = task.init_state(batch, ctx)
    _, metrics = task.eval_step(state, batch, None, ctx)
    logits = np.asarray(task.model.apply({"params": state.params}, batch["inputs"], train=False))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -log_probs[np.arange(4), batch["label"]][:3]
    np.testing.assert_allclose(metrics["loss"].compute(), ce.mean(), rtol=1e-5)
    correct = (logits.argmax(-1) == batch["label"])[:3]
    np.testing.assert_allclose(metrics["accuracy"].compute(), correct.mean())
    top2 = np.argsort(-logits, -1)[:, :2]
    in_top2 = [batch["label"][i] in top2[i] for i in range(3)]
    np.testing.assert_allclose(metrics["top2_accuracy"].compute(), np.mean(in_top2))


def test_refuses_mixing_and_datasets_without_classes():
    with pytest.raises(ConfigError, match="task.mixup_alpha mixes images"):
        make_sequence_classification_task(setup(config(mixup_alpha=0.2), token_info()))
    unlabeled = DatasetInfo("lm", {"inputs": TOKENS}, {"inputs": TOKENS}, None, 8, 8, 10)
    with pytest.raises(ConfigError, match="needs a dataset with classes"):
        make_sequence_classification_task(setup(config(), unlabeled))


def test_trains_through_the_loop_on_vectors():
    from jaxlab.train import train_and_evaluate

    c = config(top_k=0)
    c.dataset.name = "toy2d"
    c.optimizer.name, c.optimizer.learning_rate = "adam", 3e-2
    c.batch_size, c.eval_batch_size = 64, 512
    c.num_train_steps = 40
    c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 40
    result = train_and_evaluate(c, tempfile.mkdtemp(), async_checkpoints=False)
    assert result["accuracy"] > 0.9  # 8 separated clusters; chance is 1/8
