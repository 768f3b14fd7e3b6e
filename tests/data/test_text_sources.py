"""Tests of the TFDS text datasets (jaxlab.data.text_sources) under tfds.testing.mock_data."""

import itertools

import numpy as np
import pytest
import tensorflow  # noqa: F401  (loaded at collection, as the rest of the suite does)
import tensorflow_datasets as tfds

from jaxlab import data
from jaxlab.config import ConfigError, default_config
from jaxlab.data import text_sources
from jaxlab.data.text import EOS, FIRST_SYMBOL, PAD, tokenizer_for


@pytest.fixture
def mocked(tmp_path):
    text_sources.clear_caches()
    with tfds.testing.mock_data(num_examples=4):
        yield str(tmp_path)
    text_sources.clear_caches()


def _config(name, data_dir, batch=2, seq_len=4, **dataset):
    config = default_config()
    config.dataset.name = name
    config.dataset.data_dir = data_dir
    config.batch_size = config.eval_batch_size = batch
    config.dataset.seq_len = seq_len
    for key, value in dataset.items():
        config.dataset[key] = value
    return config


def _texts(name, data_dir, split, keys=("text",)):
    return text_sources.read_texts(name, data_dir, split, keys)


def test_tiny_shakespeare_windows_of_the_character_stream(mocked):
    config = _config("tiny_shakespeare", mocked, eval_split="validation")
    info = data.get_dataset_info(config)
    every = "".join(
        "\n".join(_texts("tiny_shakespeare", mocked, s)[0]) for s in ("train", "validation", "test")
    )
    tokenizer = tokenizer_for(config)
    assert tokenizer.alphabet == "".join(sorted(set(every)))
    assert info.vocab_size == len(tokenizer.alphabet)
    train = "\n".join(_texts("tiny_shakespeare", mocked, "train")[0])
    stream = tokenizer.encode(train)
    strip = (len(stream) - 1) // 2
    batches = list(itertools.islice(data.create_train_iterator(config, info), 2))
    for t, batch in enumerate(batches):
        np.testing.assert_array_equal(batch["inputs"][1], stream[strip + 4 * t : strip + 4 * t + 4])
        np.testing.assert_array_equal(batch["targets"][:, :-1], batch["inputs"][:, 1:])
    first = next(data.create_eval_iterator(config, info))
    valid = "\n".join(_texts("tiny_shakespeare", mocked, "validation")[0])
    assert tokenizer.decode(first["inputs"][0]) == valid[:4]
    size = len(tokenizer.alphabet) + 6
    bpe = _config("tiny_shakespeare", mocked, tokenizer="bpe", vocab_size=size)
    assert data.get_dataset_info(bpe).vocab_size == size  # merges from train, all characters
    assert tokenizer_for(bpe).decode(tokenizer_for(bpe).encode(every)) == every


def test_lm1b_reserves_the_special_ids(mocked):
    config = _config("lm1b", mocked)
    info = data.get_dataset_info(config)
    tokenizer = tokenizer_for(config)
    train = "\n".join(_texts("lm1b", mocked, "train")[0])
    assert info.vocab_size == FIRST_SYMBOL + len(set(train)) + 1  # + the unknown character
    batch = next(data.create_train_iterator(config, info))
    assert batch["inputs"].min() >= FIRST_SYMBOL
    assert tokenizer.decode(batch["inputs"][0]) == train[:4]


def test_imdb_reviews_padded_tokens_and_labels(mocked):
    config = _config("imdb_reviews", mocked, seq_len=24, shuffle_buffer=0, batch=4)
    info = data.get_dataset_info(config)
    assert info.features == {
        "inputs": data.Feature((24,), "int32", "tokens"),
        "label": data.Feature((), "int32", "label"),
    }
    assert info.num_classes == 2 and info.num_train_examples == 4
    texts, labels = _texts("imdb_reviews", mocked, "train", ("text", "label"))
    tokenizer = tokenizer_for(config)
    batch = next(data.create_train_iterator(config, info))
    for row in range(4):
        ids = batch["inputs"][row]
        real = ids[ids != PAD]
        assert tokenizer.decode(ids) == texts[row][:24]
        assert len(real) == min(len(texts[row]), 24) and np.all(ids[len(real) :] == PAD)
    np.testing.assert_array_equal(batch["label"], labels)
    bpe = _config("imdb_reviews", mocked, seq_len=24, tokenizer="bpe", vocab_size=40)
    assert data.get_dataset_info(bpe).vocab_size <= 40
    assert tokenizer_for(bpe).decode(tokenizer_for(bpe).encode(texts[0])) == texts[0]


def test_wmt14_source_and_target_with_eos(mocked):
    config = _config("wmt14", mocked, seq_len=8, shuffle_buffer=0)
    info = data.get_dataset_info(config)
    assert info.features == {
        "source": data.Feature((8,), "int32", "tokens"),
        "target": data.Feature((9,), "int32", "tokens"),
    }
    german, english = _texts("wmt14_translate/de-en", mocked, "train", ("de", "en"))
    tokenizer = tokenizer_for(config)
    batch = next(data.create_train_iterator(config, info))
    assert tokenizer.decode(batch["source"][0]) == german[0][:8]
    target = batch["target"][1]
    assert tokenizer.decode(target) == english[1][:8]
    assert target[min(len(english[1]), 8)] == EOS
    reverse = _config("wmt14", mocked, seq_len=8, source_language="en", target_language="de")
    assert data.get_dataset_info(reverse).features["target"].shape == (9,)
    with pytest.raises(ConfigError, match="must be 'en' and one of cs, de, fr"):
        data.validate_data_config(_config("wmt14", mocked, target_language="fr"))
    with pytest.raises(ConfigError, match="wmt14 language 'es'; valid choices: cs, de"):
        data.validate_data_config(_config("wmt14", mocked, source_language="es"))


def test_unprepared_dataset_is_a_config_error(tmp_path):
    text_sources.clear_caches()
    with pytest.raises(ConfigError, match="'tiny_shakespeare' is not prepared"):
        data.get_dataset_info(_config("tiny_shakespeare", str(tmp_path)))
