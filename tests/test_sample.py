"""scripts/sample.py end to end on a tiny language-model run through the loop on
markov_tokens (tokens shown as letters a..p), its command line run in-process (its flags live
on their own FlagValues). The run also checks that the language_model task learns."""

from __future__ import annotations

import json
import math
import os
import tempfile

import numpy as np
import pytest

from jaxlab.data.generated import markov_stream
from jaxlab.data.text import MARKOV_ALPHABET
from scripts import sample
from tests.tasks import lm_test_models  # noqa: F401  (registers test_rnn_lm)


@pytest.fixture(scope="module")
def run() -> tuple[str, dict[str, float]]:
    """(workdir, final eval metrics) of a 30-step language-model run through the loop."""
    from jaxlab.train import train_and_evaluate
    from tests.tasks.test_language_model import lm_config

    path = os.path.join(tempfile.mkdtemp(), "run")
    return path, train_and_evaluate(lm_config(), path, async_checkpoints=False)


@pytest.fixture(scope="module")
def workdir(run) -> str:
    return run[0]


def test_the_language_model_task_learns_through_the_loop(run):
    result = run[1]
    stream = markov_stream("train")
    unigram = np.bincount(stream, minlength=16) / len(stream)
    unigram_loss = -np.mean(np.log(unigram[markov_stream("test")[1:]]))  # 2.67 nats
    assert result["loss"] < unigram_loss - 0.2  # the context is used
    np.testing.assert_allclose(result["perplexity"], math.exp(result["loss"]), rtol=1e-5)
    np.testing.assert_allclose(result["bits_per_token"], result["loss"] / math.log(2), rtol=1e-5)


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `python -m scripts.sample ARGS`, in-process."""
    try:
        sample.main(["sample", *args])
        status = 0
    except SystemExit as e:
        status = e.code
    out = capsys.readouterr()
    return status, out.out, out.err


def test_prints_the_prompt_and_its_greedy_continuation(workdir, capsys):
    from jaxlab.train.checkpoint import Checkpointer
    from tests.tasks.lm_test_models import TinyRnnLM
    from tests.tasks.test_language_model import greedy_by_recomputation

    status, out, err = run_main(
        capsys, f"--workdir={workdir}", "--prompt=abc", "--num_tokens=12", "--temperature=0"
    )
    assert status == 0, err
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
    params = ckpt.restore_raw(ckpt.latest_step())["task"]["params"]
    ckpt.close()
    prompt = np.array([[0, 1, 2]], np.int32)  # "abc"
    expected = greedy_by_recomputation(TinyRnnLM(vocab_size=16), params, prompt, 12)[0]
    assert out == "abc" + "".join(MARKOV_ALPHABET[i] for i in expected) + "\n"


def test_sampling_is_reproducible_from_the_seed(workdir, capsys):
    args = (f"--workdir={workdir}", "--prompt=p", "--num_tokens=30", "--top_k=8")
    one, two, other = (run_main(capsys, *args, f"--seed={s}")[1] for s in (1, 1, 2))
    assert one == two != other
    assert len(one) == 32 and set(one.strip()) <= set(MARKOV_ALPHABET)


def test_bad_input_is_one_line_with_status_2(workdir, capsys, tmp_path):
    empty = tmp_path / "no_checkpoint"
    empty.mkdir()
    with open(os.path.join(workdir, "config.json")) as f:
        json.dump(json.load(f), open(empty / "config.json", "w"))
    cases = {
        "invalid literal for int()": ("--num_tokens=many",),
        "Unknown command line flag 'bogus'": ("--bogus=1",),
        "--workdir is required": (),
        "character 'R' is not in the vocabulary": (f"--workdir={workdir}", "--prompt=ROMEO:"),
        "no checkpoint in": (f"--workdir={empty}",),
        "--top_k must be in [0, 16]": (f"--workdir={workdir}", "--top_k=17"),
        "--temperature must be >= 0": (f"--workdir={workdir}", "--temperature=-1"),
    }
    for message, args in cases.items():
        status, out, err = run_main(capsys, *args)
        assert status == 2 and out == "", (args, err)
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not os.path.exists(empty / "checkpoints")  # nothing written
