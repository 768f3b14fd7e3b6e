"""The moving_digits video set: generation from a seed, the temporal draws (frame skipping,
random offsets, exact resume) and the spatial augmentation shared by all frames."""

from __future__ import annotations

import numpy as np
import pytest

from jaxlab import data
from jaxlab.config import ConfigError, default_config
from jaxlab.data import moving_digits as md

GLYPHS = np.random.default_rng(0).random((12, md.GLYPH, md.GLYPH))
GLYPH_LABELS = np.arange(12) % 10


class TinyMovingDigits(md.MovingDigits):
    """The source on 24 train / 6 test clips (the real splits take a second to draw)."""

    def examples(self, split: str) -> dict[str, np.ndarray]:
        clips = render(24 if split == "train" else 6, 5 if split == "train" else 6)
        return {"clip": clips["clip"], "label": clips["label"]}


def render(num: int, seed: int) -> dict[str, np.ndarray]:
    return md.render_clips(GLYPHS, GLYPH_LABELS, num, seed)


def _config(**temporal) -> object:
    c = default_config()
    c.dataset.name = "tiny_moving_digits"
    c.dataset.shuffle_buffer = 0  # identity order: batch s holds clips s*B .. (s+1)*B - 1
    c.dataset.temporal = {"frames": 5, "skip_prob": 0.5, "random_offset": True, **temporal}
    c.batch_size, c.eval_batch_size = 8, 4
    c.seed = 3
    return c


@pytest.fixture(scope="module", autouse=True)
def tiny_source():
    data.register_dataset("tiny_moving_digits", TinyMovingDigits(), replace=True)


def test_clips_are_a_function_of_the_seed_and_labels_the_nearest_digit():
    a, b, other = render(6, 1), render(6, 1), render(6, 2)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["clip"], other["clip"])
    assert a["clip"].shape == (6, md.RAW_FRAMES, md.CANVAS, md.CANVAS, 1)
    # The label, recomputed from the ground-truth positions in plain Python.
    centre = (md.CANVAS - 1) / 2
    for n in range(6):
        for t in range(md.RAW_FRAMES):
            dist = [
                np.hypot(*(a["positions"][n, t, d] + (md.GLYPH - 1) / 2 - centre))
                for d in range(md.NUM_DIGITS)
            ]
            assert a["label"][n, t] == a["digits"][n, int(np.argmin(dist))]
    # Positions stay on the canvas and move by at most the top speed per frame.
    pos = a["positions"]
    assert pos.min() >= 0 and pos.max() <= md.CANVAS - md.GLYPH
    assert np.abs(np.diff(pos, axis=1)).max() <= md.SPEED_RANGE[1] + 1e-9
    # Frame 0 is never dropped; a clean frame is the brighter of the two pasted glyphs.
    assert not a["dropped"][:, 0].any() and a["dropped"].any()
    for n, t in np.argwhere(~a["dropped"])[:10]:
        expected = np.zeros((md.CANVAS, md.CANVAS))
        for d in range(md.NUM_DIGITS):
            y, x = np.rint(a["positions"][n, t, d]).astype(int)
            glyph = GLYPHS[a["glyph_index"][n, d]]
            expected[y : y + 8, x : x + 8] = np.maximum(expected[y : y + 8, x : x + 8], glyph)
        np.testing.assert_allclose(a["clip"][n, t, ..., 0] / 255.0, expected, atol=0.5 / 255)


def test_frame_skip_and_offsets_are_drawn_from_seed_and_step_and_resume_exactly():
    c = _config(skip_prob=0.5)
    info = data.get_dataset_info(c)
    assert info.features["clip"].shape == (5, md.CANVAS, md.CANVAS, 1)
    raw = TinyMovingDigits().examples("train")
    stream = data.create_train_iterator(c, info)
    batches = [next(stream) for _ in range(4)]
    strides = []
    for step, batch in enumerate(batches):
        stride, offset = md.temporal_draws(c, step, c.batch_size)
        strides.append(stride)
        assert np.all(offset + 4 * stride <= md.RAW_FRAMES - 1) and np.all(offset >= 0)
        rows = np.arange(step * 8, step * 8 + 8) % 24
        for r in range(8):
            frames = offset[r] + stride[r] * np.arange(5)
            expected = raw["clip"][rows[r], frames].astype(np.float32) / np.float32(255)
            np.testing.assert_array_equal(batch["clip"][r], expected)
            np.testing.assert_array_equal(batch["label"][r], raw["label"][rows[r], frames])
    strides = np.concatenate(strides)
    assert set(strides) == {1, 2}  # both speeds occur with skip_prob 0.5
    resumed = next(data.create_train_iterator(c, info, state={"step": 3}))
    for key in resumed:
        np.testing.assert_array_equal(resumed[key], batches[3][key])
    # Without skipping and offsets every clip is its first 5 frames; eval always is.
    plain = _config(skip_prob=0.0, random_offset=False)
    first = next(data.create_train_iterator(plain, info))
    np.testing.assert_array_equal(first["label"], raw["label"][:8, :5])
    evals = list(data.create_eval_iterator(plain, info))
    assert [b["mask"].tolist() for b in evals] == [[1, 1, 1, 1], [1, 1, 0, 0]]
    test = TinyMovingDigits().examples("test")
    np.testing.assert_array_equal(evals[1]["label"][:2], test["label"][4:, :5])


def test_spatial_augmentation_is_one_draw_for_all_frames_of_a_clip():
    clips = np.random.default_rng(1).random((6, 3, md.CANVAS, md.CANVAS, 1)).astype(np.float32)
    out = md.augment_clips(clips, ("pad_crop:2", "flip_lr"), seed=0, step=5, rows=np.arange(6))
    pad = 2
    padded = np.pad(clips, ((0, 0), (0, 0), (pad, pad), (pad, pad), (0, 0)))
    found = set()
    for n in range(6):
        matches = []
        for oy in range(2 * pad + 1):
            for ox in range(2 * pad + 1):
                crop = padded[n, :, oy : oy + md.CANVAS, ox : ox + md.CANVAS]
                for flip in (False, True):
                    cand = crop[:, :, ::-1] if flip else crop
                    per_frame = [np.allclose(cand[t], out[n, t]) for t in range(3)]
                    if any(per_frame):
                        matches.append((oy, ox, flip, all(per_frame)))
        # One transform explains frame 0, and it explains every frame.
        assert len(matches) == 1 and matches[0][3], (n, matches)
        found.add(matches[0][:3])
    assert len(found) > 1  # different clips draw different transforms


def test_bad_temporal_and_augment_options_are_refused():
    for temporal, match in [
        ({"frames": 1}, "frames must be in"),
        ({"frames": 9, "skip_prob": 0.5}, "at most 8"),
        ({"skip_prob": 1.5}, "skip_prob must be in"),
        ({"random_offset": "yes"}, "random_offset"),
    ]:
        with pytest.raises(ConfigError, match=match):
            data.validate_data_config(_config(**temporal))
    c = _config()
    c.dataset.augment = "flip_lr,spin"
    with pytest.raises(ConfigError, match="unknown augment op 'spin'"):
        data.validate_data_config(c)
    c = _config()
    c.dataset.eval_split = "validation"
    with pytest.raises(ConfigError, match="valid choices: train, test"):
        data.validate_data_config(c)
