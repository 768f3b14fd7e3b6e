"""Times the input engines on the digits train split, each in a fresh process, imports
included: jaxlab's tf.data pipeline against TFDS's random-access data source read through
grain (the candidate without TensorFlow at run time).

    python -m scripts.compare_input_engines [--batches 50 --repeats 3 --engines tf_data,grain]

Reports, per engine, the seconds from process start to the first batch of 128 and the
milliseconds per further batch (median over the repeats). grain is not a dependency of
jaxlab: `pip install grain==0.2.18` first, or the grain side is skipped. The grain side
prepares digits once in the array_record format (into `--data_dir`/grain).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

from absl import app, flags

flags.DEFINE_integer("batches", 50, "Batches timed after the first one.")
flags.DEFINE_integer("repeats", 3, "Fresh processes per engine (medians are reported).")
flags.DEFINE_string("engines", "tf_data,grain", "Comma-separated: tf_data, grain.")
flags.DEFINE_string("data_dir", "", "TFDS data dir ('' -> a temporary one).")
FLAGS = flags.FLAGS
ENGINES = ("tf_data", "grain")
BATCH = 128

# Each engine's timing runs in a fresh interpreter: the import cost is what is compared.
_TF_DATA = """
import json, sys, time
t0 = time.time()
from configs.digits_cnn import get_config
from jaxlab import data
c = get_config(); c.dataset.data_dir = sys.argv[1]; c.batch_size = {batch}
it = data.create_train_iterator(c, data.get_dataset_info(c))
next(it); t1 = time.time()
for _ in range({batches}): next(it)
print(json.dumps({{"first": t1 - t0, "per_batch": (time.time() - t1) / {batches},
                  "tensorflow": "tensorflow" in sys.modules}}))
"""

_GRAIN = """
import json, sys, time
t0 = time.time()
import numpy as np
import grain.python as grain
import tensorflow_datasets as tfds
from jaxlab.data import digits  # noqa: F401  (the builder class)
MEAN, STD = {mean}, {std}  # digits' NORMALIZATION (jaxlab.data.preprocess imports TF)
source = tfds.data_source("digits", split="train", data_dir=sys.argv[1])

class Scale(grain.MapTransform):
    def map(self, batch):
        image = (batch["image"].astype(np.float32) / 255.0 - MEAN) / STD
        return {{"image": image, "label": batch["label"].astype(np.int32)}}

sampler = grain.IndexSampler(len(source), shuffle=True, seed=0, num_epochs=None,
                             shard_options=grain.NoSharding())
loader = grain.DataLoader(data_source=source, sampler=sampler, worker_count=0,
                          operations=[grain.Batch({batch}, drop_remainder=True), Scale()])
it = iter(loader)
next(it); t1 = time.time()
for _ in range({batches}): next(it)
print(json.dumps({{"first": t1 - t0, "per_batch": (time.time() - t1) / {batches},
                  "tensorflow": "tensorflow" in sys.modules}}))
"""


def prepare(data_dir: str, engine: str) -> str:
    """The engine's data dir with digits prepared (tfrecord for tf.data, array_record for
    grain's random access), prepared here so that the timed processes only read."""
    import tensorflow_datasets as tfds

    from jaxlab.data import digits  # noqa: F401

    path = os.path.join(data_dir, engine)
    fmt = "array_record" if engine == "grain" else "tfrecord"
    builder = tfds.builder("digits", data_dir=path, file_format=fmt)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False)
    )
    return path


def time_engine(engine: str, data_dir: str, batches: int) -> dict:
    """One fresh process reading the engine: seconds to the first batch, seconds per batch."""
    from jaxlab.data.preprocess import NORMALIZATION

    norm = NORMALIZATION["digits"]
    code = (_TF_DATA if engine == "tf_data" else _GRAIN).format(
        batch=BATCH, batches=batches, mean=norm.mean[0], std=norm.std[0]
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(
        [sys.executable, "-c", code, data_dir],
        cwd=root,
        env={
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
        },
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> None:
    del argv
    engines = [e.strip() for e in FLAGS.engines.split(",") if e.strip()]
    for e in engines:
        if e not in ENGINES:
            print(
                f"error: unknown engine {e!r}; valid choices: {', '.join(ENGINES)}", file=sys.stderr
            )
            sys.exit(2)
    if FLAGS.batches < 1 or FLAGS.repeats < 1:
        print("error: --batches and --repeats must be >= 1", file=sys.stderr)
        sys.exit(2)
    if "grain" in engines:
        try:
            import grain.python  # noqa: F401
        except ImportError:
            print("[engines] grain is not installed (pip install grain==0.2.18): skipped")
            engines.remove("grain")
    data_dir = FLAGS.data_dir or tempfile.mkdtemp(prefix="jaxlab-engines-")
    print(f"engine   first batch (s)  ms/batch of {BATCH}  TensorFlow loaded")
    for engine in engines:
        path = prepare(data_dir, engine)
        runs = [time_engine(engine, path, FLAGS.batches) for _ in range(FLAGS.repeats)]
        first = statistics.median(r["first"] for r in runs)
        per = statistics.median(r["per_batch"] for r in runs) * 1000
        print(f"{engine:8s} {first:15.2f}  {per:17.1f}  {runs[0]['tensorflow']}", flush=True)


if __name__ == "__main__":
    app.run(main)
