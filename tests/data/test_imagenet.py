"""ImageNet-style preprocessing: JPEGs of varying sizes decoded to 224x224 (random resized
crop for training, resize 256 + center crop 224 for eval), and the pipeline under mock data."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxlab.config import ConfigError, default_config
from jaxlab.data import datasets, pipeline, preprocess


def _jpeg(height: int, width: int) -> tf.Tensor:
    """JPEG bytes of a smooth colour gradient (smooth, so JPEG barely changes it)."""
    ys = np.linspace(0, 1, height)[:, None]
    xs = np.linspace(0, 1, width)[None, :]
    image = np.stack([ys + 0 * xs, 0 * ys + xs, 0.5 + 0 * ys * xs], axis=-1)
    return tf.io.encode_jpeg(tf.constant(np.round(image * 255), tf.uint8), quality=100)


def _decoded(encoded: tf.Tensor) -> np.ndarray:
    return tf.image.decode_jpeg(encoded, channels=3).numpy() / 255.0


def test_imagenet_constants():
    norm = preprocess.NORMALIZATION["imagenet2012"]
    assert norm.mean == (0.485, 0.456, 0.406) and norm.std == (0.229, 0.224, 0.225)
    fixed = preprocess.FIXED_SIZE["imagenet2012"]
    assert (fixed.size, fixed.eval_resize) == (224, 256)


def test_center_crop_keeps_the_middle_of_the_shorter_side_resized():
    encoded = _jpeg(256, 512)  # shorter side already 256: no resize, crop rows 16:240
    out = preprocess.decode_center_crop(encoded, 224, 256).numpy()
    assert out.shape == (224, 224, 3)
    np.testing.assert_allclose(out, _decoded(encoded)[16:240, 144:368], atol=1e-5)
    # A portrait image: the width becomes 256, the height 2 * 256, and the crop is central.
    out = preprocess.decode_center_crop(_jpeg(600, 300), 224, 256).numpy()
    assert out.shape == (224, 224, 3)
    np.testing.assert_allclose(out[:, :, 0].mean(), 0.5, atol=0.01)  # rows centred
    np.testing.assert_allclose(out[0, :, 1], np.linspace(16, 239, 224) / 255, atol=0.01)


def test_random_resized_crop_is_stateless_and_varies_with_the_seed():
    encoded = _jpeg(120, 160)
    seeds = [tf.constant([3, s], tf.int64) for s in range(6)]
    crops = [preprocess.decode_random_resized_crop(encoded, s, 224).numpy() for s in seeds]
    for seed, crop in zip(seeds, crops, strict=True):
        assert crop.shape == (224, 224, 3) and crop.min() >= 0 and crop.max() <= 1
        again = preprocess.decode_random_resized_crop(encoded, seed, 224).numpy()
        np.testing.assert_array_equal(crop, again)
    assert len({crop.tobytes() for crop in crops}) == len(crops)


def test_random_resized_crop_of_the_whole_area_is_the_resized_image():
    encoded = _jpeg(90, 90)  # square: area 1 and aspect ratio in [3/4, 4/3] is the image
    crop = preprocess.decode_random_resized_crop(
        encoded, tf.constant([0, 1], tf.int64), 224, min_area=1.0
    ).numpy()
    whole = tf.image.resize(_decoded(encoded), [224, 224], method="bilinear").numpy()
    np.testing.assert_allclose(crop, whole, atol=1e-5)


def test_random_resized_crop_covers_a_fraction_of_the_area():
    """Each crop spans at least sqrt(0.08) of a gradient's range in one direction and at most
    all of it: the red channel runs 0..1 over the rows, green over the columns."""
    encoded = _jpeg(200, 200)
    for s in range(10):
        crop = preprocess.decode_random_resized_crop(encoded, tf.constant([7, s], tf.int64), 32)
        crop = crop.numpy()
        span_y = crop[-1, :, 0].mean() - crop[0, :, 0].mean()
        span_x = crop[:, -1, 1].mean() - crop[:, 0, 1].mean()
        assert span_y * span_x >= 0.08 * 0.9 and span_y <= 1.0 and span_x <= 1.0


def test_preprocess_image_decodes_imagenet_for_train_and_eval():
    encoded = _jpeg(100, 140)
    seed = tf.constant([0, 5], tf.int64)
    train = preprocess.preprocess_image(encoded, "imagenet2012", seed=seed, training=True)
    assert train.shape == (224, 224, 3)
    with pytest.raises(ValueError, match="seed"):
        preprocess.preprocess_image(encoded, "imagenet2012", training=True)
    eval_a = preprocess.preprocess_image(encoded, "imagenet2012", training=False).numpy()
    crop = preprocess.decode_center_crop(encoded, 224, 256)
    expected = preprocess.normalize(crop, "imagenet2012")
    np.testing.assert_allclose(eval_a, expected.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="training only"):
        preprocess.preprocess_image(encoded, "imagenet2012", ["flip_lr"], seed, training=False)


def _config(tmp_path):
    config = default_config()
    config.dataset.name = "imagenet2012"
    config.dataset.eval_split = "validation"
    config.dataset.data_dir = str(tmp_path / "tfds")
    config.dataset.cache = False
    config.dataset.augment = "flip_lr"
    config.dataset.shuffle_buffer = 16
    config.batch_size, config.eval_batch_size = 4, 3
    return config


def test_imagenet_pipeline_under_mock_data(tmp_path):
    config = _config(tmp_path)
    with tfds.testing.mock_data(num_examples=10):
        info = datasets.get_dataset_info(config)
        assert (info.num_classes, info.image_shape) == (1000, (224, 224, 3))
        stream = pipeline.create_train_iterator(config, info)
        batches = [next(stream) for _ in range(3)]
        resumed = next(pipeline.create_train_iterator(config, info, start_step=2))
        evals = [list(pipeline.create_eval_iterator(config, info)) for _ in range(2)]
    for batch in batches:
        assert batch["image"].shape == (4, 224, 224, 3) and batch["image"].dtype == np.float32
    np.testing.assert_array_equal(resumed["image"], batches[2]["image"])
    # Epoch 1 (step 2) crops the same examples differently from epoch 0.
    assert not np.array_equal(batches[0]["image"], batches[2]["image"])
    assert len(evals[0]) == 4 and sum(b["mask"].sum() for b in evals[0]) == 10
    for a, b in zip(*evals, strict=True):  # eval is a fixed function of the data: never augmented
        np.testing.assert_array_equal(a["image"], b["image"])


def test_imagenet_not_prepared_says_how_to_prepare_it(tmp_path):
    with pytest.raises(ConfigError) as error:
        datasets.get_dataset_info(_config(tmp_path))
    message = str(error.value)
    assert "\n" not in message and "dataset 'imagenet2012' is not prepared" in message
    assert "--manual_dir" in message and "ILSVRC2012_img_train.tar" in message
