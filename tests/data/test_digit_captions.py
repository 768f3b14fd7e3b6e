"""digit_captions: the generator is a function of its seed, every caption says what the image
shows (checked from the pixels against scikit-learn's glyphs), and the dataset is served
through the registry with its vocabulary."""

from __future__ import annotations

import ml_collections
import numpy as np
import pytest
from sklearn.datasets import load_digits

from jaxlab import data
from jaxlab.config import ConfigError, default_config
from jaxlab.data import digit_captions as dc
from jaxlab.data.text import EOS, PAD

N = 40


@pytest.fixture(scope="module")
def examples():
    return dc.digit_caption_examples("test", N, data_seed=7)


def test_generator_is_deterministic_in_its_seed(examples):
    again = dc.digit_caption_examples("test", N, data_seed=7)
    other = dc.digit_caption_examples("test", N, data_seed=8)
    for key, value in examples.items():
        np.testing.assert_array_equal(value, again[key])
    assert not np.array_equal(examples["image"], other["image"])


def _parse(caption: str) -> tuple[int, str, int]:
    words = caption.split()
    assert words[0] == ("an" if words[1] == "eight" else "a"), caption
    assert words[-2] == ("an" if words[-1] == "eight" else "a"), caption
    relation = " ".join(words[2:-2])
    return dc.NUMBER_WORDS.index(words[1]), relation, dc.NUMBER_WORDS.index(words[-1])


def test_captions_match_the_placed_glyphs(examples):
    """From the pixels: each named digit's glyph sits at its corner and equals a test-pool
    glyph of that class; nothing else is drawn; the relation word matches the corners."""
    digits = load_digits()
    pool_images = digits.images[dc.GLYPH_SPLIT :] / 16.0
    pool_labels = digits.target[dc.GLYPH_SPLIT :]
    vocab = dc.WordVocab()
    for n in range(N):
        image = examples["image"][n, ..., 0]
        first, relation, second = _parse(vocab.decode(examples["tokens"][n]))
        assert first < second  # the smaller digit is named first
        drawn = np.zeros_like(image, bool)
        corners = examples["corners"][n]
        for digit, (y, x) in zip((first, second), corners, strict=True):
            crop = image[y : y + 8, x : x + 8]
            matches = np.all(np.abs(pool_images - crop) < 1e-6, axis=(1, 2))
            assert matches.any() and digit in pool_labels[matches], (n, digit)
            drawn[y : y + 8, x : x + 8] = True
        assert not image[~drawn].any()
        (y0, x0), (y1, x1) = corners
        if abs(y0 - y1) <= 2:  # one row: cells 10 apart horizontally, offsets 0..2
            assert abs(x0 - x1) >= 8 and relation == ("left of" if x0 < x1 else "right of")
        else:
            assert abs(x0 - x1) <= 2 and abs(y0 - y1) >= 8
            assert relation == ("above" if y0 < y1 else "below")
    relations = {_parse(vocab.decode(t))[1] for t in examples["tokens"]}
    assert relations == set(dc.RELATIONS)


def test_tokens_layout_and_vocabulary(examples):
    vocab = dc.WordVocab()
    tokens = examples["tokens"]
    ends = np.argmax(tokens == EOS, axis=1)
    assert np.all(tokens[np.arange(N), ends] == EOS)
    assert np.all(np.isin(ends, (5, 6)))
    after = np.arange(tokens.shape[1])[None] > ends[:, None]
    assert np.all(tokens[after] == PAD) and np.all(tokens[~after] > PAD)
    text = "an eight above a nine"
    np.testing.assert_array_equal(vocab.encode(text)[:6], [4, 13, 18, 3, 14, EOS])
    assert vocab.decode(vocab.encode(text)) == text
    with pytest.raises(ConfigError, match="'ten' is not in the caption vocabulary"):
        vocab.encode("a ten above a nine")


def test_served_through_the_registry():
    config = default_config()
    config.dataset.name = "digit_captions"
    config.batch_size, config.eval_batch_size = 8, 128
    data.validate_data_config(config)
    info = data.get_dataset_info(config)
    assert info.vocab_size == dc.VOCAB_SIZE == 20
    assert (info.num_train_examples, info.num_eval_examples) == (10_000, 500)
    batch = next(data.create_eval_iterator(config, info, process_index=0, process_count=1))
    assert batch["image"].shape == (128, 20, 20, 1) and batch["tokens"].shape == (128, 7)
    served = dc.digit_captions_split("test")
    np.testing.assert_array_equal(batch["tokens"], served["tokens"][:128])
    assert data.get_source("digit_captions").tokenizer(config).decode(batch["tokens"][0])
    bad = ml_collections.ConfigDict(config.to_dict())
    bad.dataset.eval_split = "validation"
    with pytest.raises(ConfigError, match="train, test"):
        data.validate_data_config(bad)
