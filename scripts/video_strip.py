"""Draws eval clips of a video dataset with each run's per-frame predictions.

    python -m scripts.video_strip --workdirs runs/moving_digits_cnn_lstm,runs/moving_digits_cnn \
        --names lstm,cnn --clips 3 --out docs/images/video_moving_digits_strip.png

The clips are the first `--clips` of the first run's eval split (as its config serves them).
"""

from __future__ import annotations

import argparse
import os
import sys

from scripts.cli import fail


def main(argv: list[str]) -> None:
    """Parses the flags, predicts with every workdir and writes the PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdirs", required=True, help="comma-separated video_frames runs")
    parser.add_argument("--names", default="", help="comma-separated labels (default: dirs)")
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--out", required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    workdirs = [w for w in args.workdirs.split(",") if w]
    names = [n for n in args.names.split(",") if n] or [os.path.basename(w) for w in workdirs]
    if len(names) != len(workdirs):
        fail(f"--names has {len(names)} entries for {len(workdirs)} workdirs")
    if args.clips < 1:
        fail(f"--clips must be >= 1, got {args.clips}")
    from jaxlab import data
    from jaxlab.analysis.ensemble import load_config
    from jaxlab.analysis.video_strip import clip_strip_figure, predict_workdir
    from jaxlab.config import ConfigError

    try:
        config = load_config(workdirs[0])
        config.eval_batch_size = args.clips
        info = data.get_dataset_info(config)
        batch = next(data.create_eval_iterator(config, info))
        predictions = {
            name: predict_workdir(w, batch["clip"], info.num_classes)
            for name, w in zip(names, workdirs, strict=True)
        }
    except ConfigError as e:
        fail(str(e))
    print(f"predicted {args.clips} clips with {len(workdirs)} runs", flush=True)
    figure = clip_strip_figure(batch["clip"], batch["label"], predictions)
    figure.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
