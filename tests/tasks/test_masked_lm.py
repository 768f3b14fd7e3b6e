"""The masked_lm and permutation_lm tasks (jaxlab/tasks/masked_lm.py, permutation_lm.py):
BERT's corruption proportions, a short masked_lm training run through the generic loop on
markov_tokens (configs/shakespeare_char_bert.py, shrunk), and the xlnet config's smoke run."""

from __future__ import annotations

import importlib.util
import os

import jax
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.tasks.masked_lm import mask_tokens
from jaxlab.train import train_and_evaluate
from jaxlab.train.reporting import read_metrics
from tests.conftest import ROOT

VOCAB, SPECIAL, MASK_ID = 20, (0, 1, 2), 20


def test_masking_chooses_15_percent_of_eligible_positions_then_80_10_10():
    rows, length = 1024, 100
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, VOCAB, (rows, length)).astype(np.int32)
    tokens[:, -7:] = 0  # a padded tail
    inputs, chosen = jax.jit(
        lambda k, t: mask_tokens(k, t, mask_id=MASK_ID, vocab_size=VOCAB, special_ids=SPECIAL)
    )(jax.random.key(1), tokens)
    inputs, chosen = np.asarray(inputs), np.asarray(chosen)
    eligible = ~np.isin(tokens, SPECIAL)
    # Exactly round(0.15 n) chosen per row, never a special or pad position.
    np.testing.assert_array_equal(chosen.sum(1), np.maximum(1, np.round(0.15 * eligible.sum(1))))
    assert not np.any(chosen & ~eligible)
    np.testing.assert_array_equal(inputs[~chosen], tokens[~chosen])
    # Among the ~13,000 chosen: 80% [MASK]; 10% a uniform draw from the 17 non-special ids
    # (1/17 of which is the original token); the rest kept. Tolerance 0.015 is > 4 sigma.
    picked, original = inputs[chosen], tokens[chosen]
    n_allowed = VOCAB - len(SPECIAL)
    masked = np.mean(picked == MASK_ID)
    changed = np.mean((picked != MASK_ID) & (picked != original))
    kept = np.mean(picked == original)
    assert abs(masked - 0.8) < 0.015, masked
    assert abs(changed - 0.1 * (1 - 1 / n_allowed)) < 0.015, changed
    assert abs(kept - (0.1 + 0.1 / n_allowed)) < 0.015, kept
    assert not np.any(np.isin(picked[picked != MASK_ID], SPECIAL))
    # Chosen positions are spread uniformly over the eligible ones.
    per_position = chosen[:, : length - 7].mean(0) / eligible[:, : length - 7].mean(0)
    assert abs(per_position.mean() - 0.15) < 0.01 and per_position.std() < 0.05


def smoke_config(name: str):
    """configs/<name>.py's smoke variant on markov_tokens (shakespeare_char is the text
    helper's dataset; these tests only need token windows)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config("smoke")
    c.dataset.name = "markov_tokens"
    c.eval_batch_size = 8  # the smoke's 1024 strips are for the Shakespeare validation stream
    return c


def mlm_config(tmp_path) -> object:
    c = smoke_config("shakespeare_char_bert")
    c.optimizer.name, c.optimizer.learning_rate, c.optimizer.weight_decay = "adam", 1e-2, 0.0
    c.batch_size, c.eval_batch_size = 32, 16
    c.num_train_steps = 30
    c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 10, 30, 30
    return c


def test_masked_lm_trains_through_the_loop(tmp_path):
    workdir = str(tmp_path / "mlm")
    train_and_evaluate(mlm_config(tmp_path), workdir, async_checkpoints=False)
    rows = read_metrics(os.path.join(workdir, "metrics.jsonl"))
    train = [r for r in rows if "train/loss" in r]
    evals = [r for r in rows if "eval/loss" in r]
    # The initial model is near uniform (ln 16 = 2.77 nats); the token frequencies alone
    # bring it toward the unigram entropy (2.66), the chain's context lower (the bigram
    # entropy is 1.61; that takes a few hundred steps).
    assert train[-1]["train/loss"] < train[0]["train/loss"] - 0.03, train
    assert evals[-1]["eval/loss"] < np.log(16) - 0.05, evals


def test_bad_masking_options_fail_with_one_line(tmp_path):
    from jaxlab.tasks.masked_lm import _check_config

    c = mlm_config(tmp_path)
    c.task.mask_rate = 1.5
    with pytest.raises(ConfigError, match="task.mask_rate must be in"):
        _check_config(c.task)


def test_permutation_lm_config_runs_through_the_loop(tmp_path):
    """configs/shakespeare_char_xlnet.py:smoke (xlnet, permutation_lm) on markov_tokens."""
    config = smoke_config("shakespeare_char_xlnet")
    config.eval_every_steps = 4  # once, at the end
    workdir = str(tmp_path / "xlnet")
    metrics = train_and_evaluate(config, workdir, async_checkpoints=False)
    rows = read_metrics(os.path.join(workdir, "metrics.jsonl"))
    losses = [r["train/loss"] for r in rows if "train/loss" in r]
    assert len(losses) == 2 and all(np.isfinite(losses)), rows
    assert 0 < metrics["loss"] < 2 * np.log(16) and 0 <= metrics["accuracy"] <= 1, metrics
