"""scripts.compare_input_engines: the tf.data side times, bad engines exit 2."""

from __future__ import annotations

import pytest

from tests.conftest import run_script


def test_unknown_engine_exits_2():
    proc = run_script("scripts.compare_input_engines", "--engines", "torchdata")
    assert proc.returncode == 2
    assert "unknown engine 'torchdata'; valid choices: tf_data, grain" in proc.stderr


@pytest.mark.slow
def test_tf_data_engine_is_timed(tmp_path):
    proc = run_script(
        "scripts.compare_input_engines",
        "--engines=tf_data",
        "--batches=2",
        "--repeats=1",
        f"--data_dir={tmp_path}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = [line.split() for line in proc.stdout.splitlines() if line.startswith("tf_data")]
    first, per_batch, tensorflow = float(row[1]), float(row[2]), row[3]
    assert first > 0 and per_batch > 0 and tensorflow == "True"
