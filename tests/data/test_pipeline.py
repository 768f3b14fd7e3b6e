"""Tests of the train and eval iterators on the offline digits dataset."""

import collections
import itertools

import numpy as np
import pytest
import tensorflow as tf

from jaxlab import data
from jaxlab.config import ConfigError, default_config
from jaxlab.data import digits, preprocess

BATCH = 100  # digits train has 1437 examples: 14 steps per epoch


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


def _config(data_dir, augment="flip_lr,pad_crop", **dataset):
    config = default_config()
    config.dataset.data_dir = str(data_dir)
    config.dataset.augment = augment
    config.batch_size = BATCH
    config.eval_batch_size = 64
    for key, value in dataset.items():
        config.dataset[key] = value
    return config


def _take(iterator, count):
    return list(itertools.islice(iterator, count))


def _examples(batches, mask=False):
    """The multiset of (label, image bytes) of the batches (only mask 1 with mask=True)."""
    counter = collections.Counter()
    for batch in batches:
        keep = batch["mask"] == 1 if mask else np.ones(len(batch["label"]), bool)
        for image, label in zip(batch["image"][keep], batch["label"][keep], strict=True):
            counter[(int(label), image.tobytes())] += 1
    return counter


def _plain_test_examples():
    """The test split preprocessed without augmentation, as a multiset."""
    _, _, x_test, y_test = digits.load_digits_split()
    images = tf.constant(digits.to_uint8(x_test)[..., None])
    plain = preprocess.preprocess_image(images, "digits").numpy()
    return collections.Counter(
        (int(y), image.tobytes()) for image, y in zip(plain, y_test, strict=True)
    )


def _assert_same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x["image"], y["image"])
        np.testing.assert_array_equal(x["label"], y["label"])


def test_train_batches_shapes_and_determinism(data_dir):
    config = _config(data_dir)
    info = data.get_dataset_info(config)
    first = _take(data.create_train_iterator(config, info), 3)
    assert first[0]["image"].shape == (BATCH, 8, 8, 1) and first[0]["image"].dtype == np.float32
    assert first[0]["label"].shape == (BATCH,) and first[0]["label"].dtype == np.int32
    assert set(first[0]) == {"image", "label"}
    tf.random.set_seed(1234)  # TF's global seed plays no part
    _assert_same_batches(first, _take(data.create_train_iterator(config, info), 3))
    config.seed = 1
    other = next(data.create_train_iterator(config, info))
    assert not np.array_equal(other["label"], first[0]["label"])


def test_each_epoch_is_a_fresh_shuffle_of_the_split(data_dir):
    config = _config(data_dir, augment="")
    info = data.get_dataset_info(config)
    steps = data.steps_per_epoch(config, info)
    batches = _take(data.create_train_iterator(config, info), 2 * steps)
    epochs = [_examples(batches[:steps]), _examples(batches[steps:])]
    plain_train = _plain_examples_of_split(config, "train")
    for epoch in epochs:
        assert sum(epoch.values()) == steps * BATCH
        assert not epoch - plain_train  # distinct examples of the split, none repeated
    labels = np.concatenate([b["label"] for b in batches])
    assert not np.array_equal(labels[: steps * BATCH], labels[steps * BATCH :])


def _plain_examples_of_split(config, split):
    config = _config(config.dataset.data_dir, augment="", eval_split=split)
    config.eval_batch_size = 500
    info = data.get_dataset_info(config)
    return _examples(data.create_eval_iterator(config, info), mask=True)


def test_no_shuffle_buffer_keeps_the_split_order(data_dir):
    config = _config(data_dir, augment="", shuffle_buffer=0)
    info = data.get_dataset_info(config)
    batch = next(data.create_train_iterator(config, info))
    np.testing.assert_array_equal(batch["label"], digits.load_digits_split()[1][:BATCH])


@pytest.mark.parametrize("cache", [True, False])
def test_resume_is_exact_across_an_epoch_boundary(data_dir, cache):
    config = _config(data_dir, cache=cache)
    info = data.get_dataset_info(config)
    assert data.steps_per_epoch(config, info) == 14
    from_start = _take(data.create_train_iterator(config, info), 31)
    for start in (13, 17):  # the end of epoch 0; inside epoch 1 (then across to epoch 2)
        resumed = _take(data.create_train_iterator(config, info, start_step=start), 31 - start)
        _assert_same_batches(from_start[start:], resumed)


def test_augmentation_changes_train_images(data_dir):
    plain = _config(data_dir, augment="", shuffle_buffer=0)
    info = data.get_dataset_info(plain)
    augmented = _config(data_dir, augment="flip_lr", shuffle_buffer=0)
    a = next(data.create_train_iterator(plain, info))
    b = next(data.create_train_iterator(augmented, info))
    np.testing.assert_array_equal(a["label"], b["label"])
    flipped = [
        np.array_equal(x[:, ::-1], y) and not np.array_equal(x, y)
        for x, y in zip(a["image"], b["image"], strict=True)
    ]
    kept = [np.array_equal(x, y) for x, y in zip(a["image"], b["image"], strict=True)]
    assert 0.3 < np.mean(flipped) < 0.7  # about half flipped, the rest untouched
    assert np.mean(flipped) + np.mean(kept) == 1.0


@pytest.mark.parametrize("augment", ["", "flip_lr,pad_crop"])
def test_interleave_union_of_processes_is_the_global_batch(data_dir, augment):
    config = _config(data_dir, augment=augment)
    info = data.get_dataset_info(config)
    steps, start = 4, 12  # crosses the end of epoch 0
    single = _take(data.create_train_iterator(config, info, start_step=start), steps)
    parts = [
        _take(
            data.create_train_iterator(
                config, info, start_step=start, process_index=p, process_count=2
            ),
            steps,
        )
        for p in range(2)
    ]
    for step in range(steps):
        assert parts[0][step]["label"].shape == (BATCH // 2,)
        union = _examples([parts[0][step]]) + _examples([parts[1][step]])
        assert union == _examples([single[step]])


def test_split_host_sharding_reads_disjoint_parts(data_dir):
    config = _config(data_dir, augment="", train_host_sharding="split")
    info = data.get_dataset_info(config)
    steps = data.steps_per_epoch(config, info)
    parts = [
        _examples(
            _take(data.create_train_iterator(config, info, process_index=p, process_count=2), steps)
        )
        for p in range(2)
    ]
    assert sum(parts[0].values()) == sum(parts[1].values()) == steps * BATCH // 2
    assert not parts[0] & parts[1]
    resumed = _take(
        data.create_train_iterator(
            config, info, start_step=steps + 2, process_index=1, process_count=2
        ),
        2,
    )
    again = _take(
        data.create_train_iterator(config, info, process_index=1, process_count=2), steps + 4
    )
    _assert_same_batches(again[steps + 2 :], resumed)


@pytest.mark.parametrize("eval_batch", [64, 100])
@pytest.mark.parametrize("process_count", [1, 2])
def test_eval_sees_every_example_once(data_dir, eval_batch, process_count):
    config = _config(data_dir)  # augmentation on: eval must ignore it
    config.eval_batch_size = eval_batch
    info = data.get_dataset_info(config)
    expected_batches = data.num_eval_batches(config, info, process_count)
    seen = collections.Counter()
    for p in range(process_count):
        batches = list(
            data.create_eval_iterator(config, info, process_index=p, process_count=process_count)
        )
        assert len(batches) == expected_batches
        for batch in batches:
            assert batch["image"].shape == (eval_batch // process_count, 8, 8, 1)
            assert batch["mask"].dtype == np.float32 and batch["label"].dtype == np.int32
            padding = batch["mask"] == 0
            assert not batch["image"][padding].any() and not batch["label"][padding].any()
        seen += _examples(batches, mask=True)
    # Every test example exactly once, with its plain (never augmented) preprocessing.
    assert seen == _plain_test_examples()


def test_bad_process_arguments(data_dir):
    config = _config(data_dir)
    info = data.get_dataset_info(config)
    with pytest.raises(ConfigError, match="process_index must be in"):
        data.create_eval_iterator(config, info, process_index=2, process_count=2)
    with pytest.raises(ConfigError, match="start_step must be"):
        data.create_train_iterator(config, info, start_step=-1)
    with pytest.raises(ConfigError, match="not divisible by the process count 3"):
        data.create_train_iterator(config, info, process_index=0, process_count=3)


def test_resume_far_away_skips_whole_epochs_without_reading_them(data_dir):
    config = _config(data_dir)
    info = data.get_dataset_info(config)
    epoch_start = 14 * 10**7  # replaying the epochs before it would take days
    at_epoch = _take(data.create_train_iterator(config, info, start_step=epoch_start), 5)
    inside = _take(data.create_train_iterator(config, info, start_step=epoch_start + 3), 2)
    _assert_same_batches(at_epoch[3:], inside)


def test_pipelines_keep_tensorflow_off_gpus(data_dir, monkeypatch):
    calls = []
    monkeypatch.setattr(tf.config, "set_visible_devices", lambda *args: calls.append(args))
    config = _config(data_dir)
    info = data.get_dataset_info(config)
    data.create_train_iterator(config, info)
    data.create_eval_iterator(config, info)
    assert calls == [([], "GPU"), ([], "GPU")]
