"""Tokenizers of jaxlab.data.text."""

import ml_collections
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.data.text import CharTokenizer, tokenizer_for


def test_char_tokenizer_round_trip_and_unknown_character():
    tok = CharTokenizer("ab c")
    ids = tok.encode("a cab")
    np.testing.assert_array_equal(ids, [0, 2, 3, 0, 1])
    assert tok.decode(ids) == "a cab"
    with pytest.raises(ConfigError, match="'z' is not in the vocabulary"):
        tok.encode("z")


def test_tokenizer_for_markov_tokens_and_for_a_dataset_without_text():
    config = ml_collections.ConfigDict({"dataset": {"name": "markov_tokens"}})
    assert tokenizer_for(config).vocab_size == 16
    config.dataset.name = "toy2d"
    with pytest.raises(ConfigError, match="no tokenizer"):
        tokenizer_for(config)
