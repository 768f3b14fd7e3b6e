"""`moving_digits`: an offline video set of two handwritten digits bouncing on a canvas, with
a per-frame label that a single frame does not always determine.

    moving_digits  {'clip': clip (T, 24, 24, 1) float32 in [0, 1], 'label': label (T,) int32},
                   10 classes; 1600 train and 400 test clips of RAW_FRAMES = 16 stored
                   frames, of which the pipeline serves T = `dataset.temporal.frames`
                   (default 8).

Design (in the spirit of Moving MNIST, from scikit-learn's 8x8 digits so nothing is
downloaded). Each clip holds two digit glyphs (drawn from the `digits` train split for
'train' clips and from its test split for 'test' clips, so test glyphs are unseen) that
move at a constant speed of 0.5 to 1 pixel per frame in a random direction and bounce off
the borders of a 24x24 canvas; where they overlap the brighter pixel wins (occlusion). The
label of frame t is the class of the digit whose centre is nearest the canvas centre at t.
After the first frame each frame is, with probability DROP_PROB = 0.3, a dropped frame:
uniform noise in [0, 1] with no trace of the digits (a sensor glitch). Its label is still
the nearest digit's class, so:

- on a clean frame one image suffices (find both digits, compare their distances to the
  centre, classify the nearer one);
- on a dropped frame no single-frame model can do better than guessing, while a model
  that remembers the previous frames can carry the label over (the nearest digit changes
  rarely between two frames: the true label flips on 7% of consecutive pairs, 14% at
  the 2x speed of frame skipping), and
  the same memory keeps its predictions from flipping back and forth.

So a recurrent head measurably helps: a frame-by-frame classifier's per-frame accuracy is
at most about 0.7 x its clean-frame accuracy + 0.3 x chance, and it flips its prediction
into and out of every dropped frame.

Temporal augmentation (train only, config `dataset.temporal`): `frames` T (2 to 16);
`skip_prob`: the probability that a train clip takes every second stored frame (a 2x
speed-up; needs 2T - 1 <= 16); `random_offset`: the clip starts at a uniform offset among
those that fit (else at 0). Eval clips are the first T frames at normal speed. The draws
of step s are a pure function of (config.seed, s), so resuming at any step is exact.

Spatial augmentation: `dataset.augment` takes the ops of `jaxlab.data.augment`, applied to
the feature 'clip' (kind 'clip'), so every frame of a clip gets the same flip, crop,
colour jitter or cutout (one draw per clip, seeded by (config.seed, step, row)). They run
in TensorFlow, imported only when ops are given. Labels are never changed (a crop moves the
canvas centre by a pixel or two, which the label ignores; prefer colour ops).

Why an `ArraySource` and not a TFDS builder like `shapes_seg`: the TFDS pipeline
(`jaxlab.data.pipeline`, `datasets`) reads exactly an 'image' and a 'label' per example, and
the temporal draws need (seed, step), which its per-example seeds (seed, epoch, index) do
not give; this source reuses the joint tf ops themselves (`augment.apply_ops`) on whole
clips instead, and serves the clips from memory (15 MB of uint8).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import ml_collections
import numpy as np

from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.data.features import DatasetInfo, Feature, full_batches_per_epoch, pad_batch
from jaxlab.data.generated import ArraySource, _frozen
from jaxlab.data.registry import Batch, num_views

CANVAS = 24
GLYPH = 8
RAW_FRAMES = 16
NUM_DIGITS = 2
DROP_PROB = 0.3
SPEED_RANGE = (0.5, 1.0)
SPLIT_SIZES = {"train": 1600, "test": 400}
DATA_SEEDS = {"train": 21, "test": 22}
DEFAULT_FRAMES = 8
_TEMPORAL_TAG = 0x7E3A  # keeps the temporal draws apart from other uses of config.seed
_SPATIAL_TAG = 0x5A7  # the same for the spatial augmentation seeds


def bounce(position: np.ndarray, velocity: np.ndarray, steps: int, limit: float) -> np.ndarray:
    """Positions [steps, ...] of points moving at `velocity` from `position` inside
    [0, limit], reflected at both ends (a bounce reverses that component of the velocity)."""
    out = np.empty((steps, *position.shape))
    pos, vel = position.astype(np.float64), velocity.astype(np.float64)
    for t in range(steps):
        out[t] = pos
        pos = pos + vel
        low, high = pos < 0, pos > limit
        pos = np.where(low, -pos, np.where(high, 2 * limit - pos, pos))
        vel = np.where(low | high, -vel, vel)
    return out


def render_clips(
    glyphs: np.ndarray,
    glyph_labels: np.ndarray,
    num_clips: int,
    data_seed: int,
    num_frames: int = RAW_FRAMES,
) -> dict[str, np.ndarray]:
    """`num_clips` clips drawn from `glyphs` (float [G, 8, 8] in [0, 1]) with numpy from
    `data_seed`: 'clip' uint8 [N, num_frames, 24, 24, 1], 'label' int32 [N, num_frames],
    and the ground truth behind them: 'positions' float [N, num_frames, 2 digits, (y, x)]
    (the glyphs' top-left corners), 'digits' int32 [N, 2] (their classes), 'glyph_index'
    [N, 2] (their rows of `glyphs`) and 'dropped' bool [N, num_frames]. See the module
    docstring for the design."""
    rng = np.random.default_rng(data_seed)
    limit = CANVAS - GLYPH
    choice = rng.integers(0, len(glyphs), (num_clips, NUM_DIGITS))
    start = rng.uniform(0, limit, (num_clips, NUM_DIGITS, 2))
    speed = rng.uniform(*SPEED_RANGE, (num_clips, NUM_DIGITS, 1))
    angle = rng.uniform(0, 2 * np.pi, (num_clips, NUM_DIGITS))
    velocity = speed * np.stack([np.sin(angle), np.cos(angle)], -1)
    positions = np.moveaxis(bounce(start, velocity, num_frames, limit), 0, 1)  # [N, T, D, 2]
    dropped = rng.random((num_clips, num_frames)) < DROP_PROB
    dropped[:, 0] = False
    noise = rng.random((num_clips, num_frames, CANVAS, CANVAS))
    centre = (CANVAS - 1) / 2
    distance = np.linalg.norm(positions + (GLYPH - 1) / 2 - centre, axis=-1)  # [N, T, D]
    digits = glyph_labels[choice].astype(np.int32)
    labels = np.take_along_axis(digits, np.argmin(distance, -1), axis=1)  # [N, T]
    corners = np.rint(positions).astype(np.int64)
    clips = np.empty((num_clips, num_frames, CANVAS, CANVAS), np.uint8)
    clips[dropped] = np.rint(noise[dropped] * 255)
    clean_n, clean_t = np.nonzero(~dropped)  # the clean frames, in the order of clips[~dropped]
    frames = np.zeros((len(clean_n), CANVAS, CANVAS))
    index = np.arange(len(clean_n))
    for d in range(NUM_DIGITS):
        y, x = corners[clean_n, clean_t, d].T
        glyph = glyphs[choice[clean_n, d]]  # [M, 8, 8]
        for i in range(GLYPH):  # each pixel of the glyph, pasted into every frame at once
            for j in range(GLYPH):
                pixels = (index, y + i, x + j)
                frames[pixels] = np.maximum(frames[pixels], glyph[:, i, j])
    clips[~dropped] = np.rint(frames * 255)
    return {
        "clip": clips[..., None],
        "label": labels.astype(np.int32),
        "positions": positions,
        "digits": digits,
        "glyph_index": choice,
        "dropped": dropped,
    }


@functools.cache
def moving_digits_examples(split: str) -> dict[str, np.ndarray]:
    """The stored clips of a split ('clip' uint8 [N, 16, 24, 24, 1], 'label' int32 [N, 16]),
    generated once per process from the split's fixed data seed; KeyError for a split other
    than train and test."""
    from jaxlab.data.digits import MAX_PIXEL, load_digits_split

    x_train, y_train, x_test, y_test = load_digits_split()
    glyphs, labels = (x_train, y_train) if split == "train" else (x_test, y_test)
    clips = render_clips(glyphs / MAX_PIXEL, labels, SPLIT_SIZES[split], DATA_SEEDS[split])
    return _frozen({"clip": clips["clip"], "label": clips["label"]})


def temporal_options(config: ml_collections.ConfigDict) -> tuple[int, float, bool]:
    """(frames, skip_prob, random_offset) of `config.dataset.temporal` (defaults 8, 0.0,
    False where a key is absent); ConfigError for a value out of range."""
    section = config.dataset.get("temporal", None) or ml_collections.ConfigDict()
    frames = section.get("frames", DEFAULT_FRAMES)
    skip_prob = section.get("skip_prob", 0.0)
    random_offset = section.get("random_offset", False)
    check_positive("dataset.temporal.frames", frames, integer=True)
    if not 2 <= frames <= RAW_FRAMES:
        raise ConfigError(
            f"dataset.temporal.frames must be in [2, {RAW_FRAMES}] (the stored frames), "
            f"got {frames!r}"
        )
    check_positive("dataset.temporal.skip_prob", skip_prob, allow_zero=True)
    if skip_prob > 1:
        raise ConfigError(f"dataset.temporal.skip_prob must be in [0, 1], got {skip_prob!r}")
    if skip_prob > 0 and 2 * frames - 1 > RAW_FRAMES:
        raise ConfigError(
            f"dataset.temporal.skip_prob > 0 takes every second frame: frames must be at most "
            f"{(RAW_FRAMES + 1) // 2} for the {RAW_FRAMES} stored frames, got {frames}"
        )
    if not isinstance(random_offset, bool):
        raise ConfigError(
            f"dataset.temporal.random_offset must be True or False, got {random_offset!r}"
        )
    return int(frames), float(skip_prob), random_offset


def temporal_draws(
    config: ml_collections.ConfigDict, step: int, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(stride [B] in {1, 2}, offset [B]) of the rows of global train batch `step`: stride 2
    with probability skip_prob, the offset uniform over the starts that fit the stored
    frames (0 without random_offset); a pure function of (config.seed, step)."""
    frames, skip_prob, random_offset = temporal_options(config)
    rng = np.random.default_rng(np.random.SeedSequence([_TEMPORAL_TAG, config.seed % 2**64, step]))
    stride = np.where(rng.random(batch_size) < skip_prob, 2, 1)
    last_start = RAW_FRAMES - (frames - 1) * stride - 1  # >= 0 (temporal_options)
    offset = rng.integers(0, last_start + 1) if random_offset else np.zeros(batch_size, int)
    return stride, offset


def select_frames(
    arrays: dict[str, np.ndarray], stride: np.ndarray, offset: np.ndarray, frames: int
) -> dict[str, np.ndarray]:
    """Frames offset + stride * [0, frames) of each row of 'clip' [B, RAW, ...] (as float32
    in [0, 1]) and 'label' [B, RAW]."""
    index = offset[:, None] + stride[:, None] * np.arange(frames)  # [B, frames]
    rows = np.arange(len(index))[:, None]
    clip = arrays["clip"][rows, index].astype(np.float32) / 255.0
    return {"clip": clip, "label": arrays["label"][rows, index]}


@functools.cache
def _spatial_fn(ops: tuple[str, ...], frames: int) -> Any:
    """A tf.function augmenting a batch of clips [B, T, H, W, C] with one seed [2] per row."""
    import tensorflow as tf

    from jaxlab.data.augment import apply_ops

    features = {"clip": Feature((frames, CANVAS, CANVAS, 1), "float32", "clip")}

    @tf.autograph.experimental.do_not_convert  # plain tf ops, no Python control flow
    def one(args: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        clip, seed = args
        example = apply_ops({"clip": clip}, ops, seed, features)
        return apply_ops(example, ops, seed, features, after_normalize=True)["clip"]

    @tf.function(reduce_retracing=True)
    def augment(clips: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        return tf.map_fn(one, (clips, seeds), fn_output_signature=tf.float32)

    return augment


def augment_clips(
    clips: np.ndarray, ops: tuple[str, ...], seed: int, step: int, rows: np.ndarray
) -> np.ndarray:
    """`clips` [B, T, H, W, C] (rows `rows` of global batch `step`) augmented by the ops of
    `jaxlab.data.augment`, the same draw for every frame of a clip; row r of step s draws
    from the tf seed (fold of config.seed, s * 2**20 + r)."""
    if not ops:
        return clips
    import tensorflow as tf

    base = (_SPATIAL_TAG * 2**32 + seed % 2**32) % 2**63
    seeds = np.stack([np.full(len(rows), base), step * 2**20 + np.asarray(rows)], -1)
    out = _spatial_fn(tuple(ops), clips.shape[1])(tf.constant(clips), tf.constant(seeds, tf.int64))
    return out.numpy()


class MovingDigits(ArraySource):
    """Two digits bouncing on a 24x24 canvas, labelled per frame (see the module docstring)."""

    num_classes = 10

    def features_for(self, frames: int) -> dict[str, Feature]:
        """The example spec for clips of `frames` frames."""
        return {
            "clip": Feature((frames, CANVAS, CANVAS, 1), "float32", "clip"),
            "label": Feature((frames,), "int32", "label"),
        }

    @property
    def features(self) -> dict[str, Feature]:  # type: ignore[override]
        return self.features_for(DEFAULT_FRAMES)

    def validate(self, config: ml_collections.ConfigDict, process_count: int = 1) -> None:
        name = config.dataset.name
        if num_views(config):
            raise ConfigError(f"dataset {name!r} has clips, not views; set dataset.num_views=0")
        if config.dataset.train_host_sharding != "interleave":
            raise ConfigError(
                f"dataset {name!r} is generated in memory: dataset.train_host_sharding must "
                f"be 'interleave', got {config.dataset.train_host_sharding!r}"
            )
        check_choice(f"dataset.train_split of {name!r}", config.dataset.train_split, SPLIT_SIZES)
        check_choice(f"dataset.eval_split of {name!r}", config.dataset.eval_split, SPLIT_SIZES)
        check_positive(
            "dataset.shuffle_buffer", config.dataset.shuffle_buffer, allow_zero=True, integer=True
        )
        temporal_options(config)
        augment = config.dataset.augment
        if not isinstance(augment, str):
            raise ConfigError(f"dataset.augment must be a comma-separated string, got {augment!r}")
        if augment.strip(", "):
            from jaxlab.data.augment import parse_augment

            parse_augment(augment)

    def examples(self, split: str) -> dict[str, np.ndarray]:
        return moving_digits_examples(split)

    def info(self, config: ml_collections.ConfigDict) -> DatasetInfo:
        features = self.features_for(temporal_options(config)[0])
        return DatasetInfo(
            name=config.dataset.name,
            features=features,
            eval_features=dict(features),
            num_classes=self.num_classes,
            num_train_examples=len(self.examples(config.dataset.train_split)["label"]),
            num_eval_examples=len(self.examples(config.dataset.eval_split)["label"]),
        )

    def steps_per_epoch(self, config: ml_collections.ConfigDict, info: DatasetInfo) -> int:
        return full_batches_per_epoch(config, info)

    def train_iterator(
        self,
        config: ml_collections.ConfigDict,
        info: DatasetInfo,
        *,
        start_step: int,
        process_index: int,
        process_count: int,
    ) -> Iterator[Batch]:
        """Batch s: rows of epoch s // steps' permutation, each cut to T frames by the
        temporal draws of (seed, s), then spatially augmented (see the module docstring)."""
        arrays = self.examples(config.dataset.train_split)
        frames = temporal_options(config)[0]
        ops = ()
        if config.dataset.augment.strip(", "):  # TensorFlow is imported only for ops
            from jaxlab.data.augment import parse_augment

            ops = tuple(parse_augment(config.dataset.augment))
        steps, batch = self.steps_per_epoch(config, info), config.batch_size
        rows = np.arange(process_index, batch, process_count)
        step = start_step
        while True:
            epoch, index = divmod(step, steps)
            order = self._epoch_order(config, epoch, info.num_train_examples)
            picked = order[index * batch : (index + 1) * batch][rows]
            stride, offset = temporal_draws(config, step, batch)
            out = select_frames(
                {k: v[picked] for k, v in arrays.items()}, stride[rows], offset[rows], frames
            )
            out["clip"] = augment_clips(out["clip"], ops, config.seed, step, rows)
            yield out
            step += 1

    def eval_iterator(
        self,
        config: ml_collections.ConfigDict,
        info: DatasetInfo,
        *,
        process_index: int,
        process_count: int,
    ) -> Iterator[Batch]:
        """The eval split's clips cut to their first T frames (stride 1), padded batches."""
        arrays = self.examples(config.dataset.eval_split)
        frames = temporal_options(config)[0]
        local = config.eval_batch_size // process_count
        part = np.arange(process_index, info.num_eval_examples, process_count)
        for i in range(self.num_eval_batches(config, info, process_count)):
            picked = part[i * local : (i + 1) * local]
            ones = np.ones(len(picked), int)
            cut = select_frames({k: v[picked] for k, v in arrays.items()}, ones, 0 * ones, frames)
            yield pad_batch(cut, info.eval_features, local)


MOVING_DIGITS_SOURCES = {"moving_digits": MovingDigits()}
