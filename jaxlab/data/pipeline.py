"""tf.data input pipelines of the TFDS datasets: the infinite, resumable train stream and the
exact, padded eval pass.

Both yield process-local numpy batches with the keys of the DatasetInfo's features: for an
image classification set {'image': float32 [B, H, W, C], 'label': int32 [B]}, for a
segmentation set 'label' int32 [B, H, W] (eval adds 'mask': float32 [B], 1 for a real
example, 0 for padding; with `dataset.num_views` V >= 2, train batches hold 'views' float32
[B, V, H, W, C] instead of 'image'). The loop assembles the global `jax.Array`s from them;
nothing here calls JAX (tf.data runs its own threads).

Randomness is a pure function of config.seed: epoch `e` is shuffled with a seed folded from
(seed, e), and example `i` of epoch `e` is augmented with a seed folded from (seed, e, i),
where `i` is the example's position in the epoch's global order (view `v` of it from
fold_in(that seed, v)). So the stream depends on (seed, dataset, splits, batch_size,
augment, num_views) alone, and starting at step `s` yields exactly what a stream started
at 0 yields from step `s` on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxlab.data.augment import parse_augment
from jaxlab.data.datasets import (
    get_builder,
    num_eval_batches,
    process_split_sizes,
    steps_per_epoch,
)
from jaxlab.data.features import EVAL_MASK, DatasetInfo, padding_example
from jaxlab.data.preprocess import FIXED_SIZE, preprocess_example
from jaxlab.data.registry import normalize_images, num_views

_NUM_EPOCHS = 2**62  # "forever" for tf.data.Dataset.range
_SHUFFLE_STREAM, _AUGMENT_STREAM = 0, 1  # fold-in tags that separate the two uses of a key


def _hide_accelerators_from_tf() -> None:
    """Keeps TensorFlow off the GPUs, which belong to JAX (a no-op once TF has started)."""
    try:
        tf.config.set_visible_devices([], "GPU")
    except (RuntimeError, ValueError):
        pass  # devices already initialized, or no GPU support: nothing to hide


def _read(builder: tfds.core.DatasetBuilder, split: object) -> tf.data.Dataset:
    """The split's {'image', 'label'} examples in a fixed order: the image uint8, or its
    undecoded JPEG bytes for a dataset of `FIXED_SIZE` (decoded later, only the crop); the
    label (class index or per-pixel map) int32."""
    decoders = None
    if builder.name in FIXED_SIZE:
        decoders = {"image": tfds.decode.SkipDecoding()}
    ds = builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)
    return ds.map(
        _plain(lambda ex: {"image": ex["image"], "label": tf.cast(ex["label"], tf.int32)}),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def _plain(fn: Callable) -> Callable:
    """`fn` for tf.data without AutoGraph's source conversion. The pipeline's functions
    branch only on Python values (config, feature specs), never on tensors, so converting
    them changes nothing but costs seconds per map at every pipeline build (measured: most
    of a digits smoke run's 15 s of tf.data tracing)."""
    return tf.autograph.experimental.do_not_convert(fn)


def _deterministic(ds: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options)


def create_train_iterator(
    config: ml_collections.ConfigDict,
    info: DatasetInfo,
    *,
    start_step: int = 0,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
    """The infinite train stream of this process's batches, starting at global step `start_step`.

    Expects a validated config (`jaxlab.data.create_train_iterator` checks it). Each epoch
    is a fresh shuffle (buffer `config.dataset.shuffle_buffer`; the whole split
    when the buffer is at least its size, no shuffling when 0) cut into
    `steps_per_epoch(config, info)` full global batches; the remainder is dropped. Resuming
    at `start_step` skips only inside the current epoch, on the raw examples (before scaling
    and augmentation). Batches hold `batch_size // process_count` examples. TFDS decodes
    the images as it reads them; with `config.dataset.cache` that happens once, in epoch 0.
    Datasets of `FIXED_SIZE` (imagenet2012) are read as JPEG bytes and decoded per example
    with its random crop (only the window is decoded); caching then holds the bytes.

    Host sharding (`config.dataset.train_host_sharding`):
    - 'interleave' (default): every process reads the whole split, walks the same shuffled
      stream and keeps its share of every global batch, so the union over processes of the
      local batches of step s is the global batch of step s of a single process, whatever
      the process count. Each process reads the whole split (cached after the first
      epoch) but scales and augments only its own examples.
    - 'split': each process reads and shuffles only its `tfds.split_for_jax_process` part.
      This scales to datasets too large for each host to read, but the global batches then
      depend on the process count (a run is reproducible for a fixed process count).
    """
    _hide_accelerators_from_tf()
    ops = parse_augment(config.dataset.augment)
    steps = steps_per_epoch(config, info)
    local_batch = config.batch_size // process_count
    split_mode = config.dataset.train_host_sharding == "split"

    builder = get_builder(config)
    split = config.dataset.train_split
    if split_mode:
        split = tfds.split_for_jax_process(
            split, process_index=process_index, process_count=process_count
        )
    base = _read(builder, split)
    if config.dataset.cache:
        base = base.cache()
    # Elements this process reads per epoch before sharding; the epoch's global order
    # has `steps * batch_size` positions, and index -> global position is i*stride + offset.
    if split_mode:
        per_epoch, stride, offset = steps * local_batch, process_count, process_index
    else:
        per_epoch, stride, offset = steps * config.batch_size, 1, 0
    root_key = tf.constant([0, config.seed], tf.int64)
    buffer = config.dataset.shuffle_buffer

    def epoch_examples(epoch: tf.Tensor) -> tf.data.Dataset:
        """(epoch, position in the epoch, image, label) of this process's examples."""
        ds = base
        if buffer > 1:
            key = tf.random.experimental.stateless_fold_in(root_key, epoch)
            key = tf.random.experimental.stateless_fold_in(key, _SHUFFLE_STREAM)
            if split_mode:
                key = tf.random.experimental.stateless_fold_in(key, process_index)
            seed = tf.random.stateless_uniform(
                [], seed=key, minval=None, maxval=None, dtype=tf.int64
            )
            # This function is traced into its own graph: clearing that graph's seed makes
            # `seed` the shuffle's whole seed, whatever tf.random.set_seed was called with.
            tf.compat.v1.get_default_graph().seed = None
            ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=False)
        # Drop the epoch's remainder by filtering, not take(): reading to the end of the
        # split lets ds.cache() complete in the first epoch (a partial cache is discarded).
        ds = ds.enumerate().filter(_plain(lambda i, ex: i < per_epoch))
        if not split_mode and process_count > 1:
            ds = ds.shard(process_count, process_index)  # before the costly map
        return ds.map(_plain(lambda i, ex: {"epoch": epoch, "index": i * stride + offset, **ex}))

    start_epoch, step_in_epoch = divmod(start_step, steps)
    ds = tf.data.Dataset.range(start_epoch, _NUM_EPOCHS).flat_map(_plain(epoch_examples))
    ds = ds.skip(step_in_epoch * local_batch)  # raw uint8 examples: not yet augmented

    name, views = config.dataset.name, num_views(config)
    normalized = normalize_images(config)
    features = info.eval_features  # a train example's spec before its views are made

    def preprocess(ex: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        seed = None
        if ops or views or name in FIXED_SIZE:
            seed = tf.random.experimental.stateless_fold_in(root_key, ex["epoch"])
            seed = tf.random.experimental.stateless_fold_in(seed, _AUGMENT_STREAM)
            seed = tf.random.experimental.stateless_fold_in(seed, ex["index"])
        raw = {key: ex[key] for key in features}
        if not views:
            return preprocess_example(
                raw, name, features, ops, seed, training=True, normalized=normalized
            )
        outs = [
            preprocess_example(
                raw,
                name,
                features,
                ops,
                tf.random.experimental.stateless_fold_in(seed, view),
                training=True,
                normalized=normalized,
            )
            for view in range(views)
        ]
        # Only the image differs between views (validate_tfds_config: no masks with views).
        out = {key: value for key, value in outs[0].items() if key != "image"}
        out["views"] = tf.stack([o["image"] for o in outs])
        return out

    ds = ds.map(_plain(preprocess), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(local_batch, drop_remainder=True)
    ds = _deterministic(ds.prefetch(config.dataset.prefetch))
    return iter(tfds.as_numpy(ds))


def create_eval_iterator(
    config: ml_collections.ConfigDict,
    info: DatasetInfo,
    *,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
    """One pass over this process's part of the eval split, padded to `num_eval_batches`.

    The part is `tfds.split_for_jax_process(config.dataset.eval_split, ...)`, in order, not
    augmented. Batches hold `eval_batch_size // process_count` examples with a 'mask'; the
    last ones are padded with zero examples of mask 0 (built from `info.eval_features`), so
    every process yields the same number of batches and every eval example has mask 1
    exactly once over all processes.

    `clu.deterministic_data.pad_dataset` does this padding too, but is not used: its mask is
    bool (jaxlab's is float32, multiplied into metrics), and it pads with the zeros of the
    pipeline's element_spec, where jaxlab pads every source (TFDS or numpy-generated) with
    one helper from the declared spec, so a pipeline that drifts from its DatasetInfo fails
    here (concatenate) instead of feeding wrong shapes to a compiled step.
    """
    _hide_accelerators_from_tf()
    local_batch = config.eval_batch_size // process_count
    builder = get_builder(config)
    split = tfds.split_for_jax_process(
        config.dataset.eval_split, process_index=process_index, process_count=process_count
    )
    sizes = process_split_sizes(builder, config.dataset.eval_split, process_count)
    num_batches = num_eval_batches(config, info, process_count)
    padding = num_batches * local_batch - sizes[process_index]
    if padding < 0:
        raise ValueError(
            f"{info.name} eval part {process_index} does not fit {num_batches} batches"
        )

    features = info.eval_features
    ds = _read(builder, split).map(
        _plain(
            lambda ex: {
                **preprocess_example(
                    ex,
                    config.dataset.name,
                    features,
                    training=False,
                    normalized=normalize_images(config),
                ),
                EVAL_MASK: tf.constant(1.0, tf.float32),
            }
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    pad = tf.data.Dataset.from_tensors(padding_example(features))
    ds = ds.concatenate(pad.repeat(padding))
    ds = ds.batch(local_batch, drop_remainder=True)
    ds = _deterministic(ds.prefetch(config.dataset.prefetch))
    return iter(tfds.as_numpy(ds))
