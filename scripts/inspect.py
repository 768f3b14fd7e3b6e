"""Prints a model's parameter table: every layer with the formula behind its count, the
total, the batch statistics and the FLOPs of one forward pass (XLA cost analysis).

    python -m scripts.inspect --model resnet18 [--num_classes 1000 --image_size 224 --channels 3]
    python -m scripts.inspect --config configs/cifar10_resnet20.py
    python -m scripts.inspect --model lenet5 --image_size 32 --channels 1 --flax_summary

With --config the model (`config.model.name` and its other keys) comes from the config and
the input shape and classes from its dataset (`jaxlab.data.get_dataset_info`), falling back
to the flags when the dataset cannot be read. Nothing is allocated: shapes come from
`jax.eval_shape`. Exit status 2 with one line for a bad name or argument.
"""

from __future__ import annotations

import os
import sys

# Run as `python scripts/inspect.py`, this file must not shadow the standard library's `inspect`.
if __name__ == "__main__":
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    sys.path.insert(0, os.path.dirname(_here))

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Registered model name (see jaxlab.models.list_models()).")
flags.DEFINE_integer("num_classes", 1000, "Classes of the head (without --config).")
flags.DEFINE_integer("image_size", 224, "Input height and width (without --config).")
flags.DEFINE_integer("channels", 3, "Input channels (without --config).")
flags.DEFINE_integer("batch_size", 1, "Batch size of the forward pass whose FLOPs are counted.")
flags.DEFINE_bool("flops", True, "Compile the forward pass to report its FLOPs.")
flags.DEFINE_bool("flax_summary", False, "Also print flax's nn.tabulate table of the model.")
config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)


def resolve(config, model: str | None, num_classes: int, image_size: int, channels: int):
    """Returns (model name, model kwargs, input HWC) from the config, else from the flags."""
    from jaxlab.config import ConfigError

    hwc = (image_size, image_size, channels)
    if config is None:
        if not model:
            raise ConfigError("give --model NAME or --config FILE")
        return model, {"num_classes": num_classes}, hwc
    kwargs = dict(config.model.to_dict())
    name = kwargs.pop("name")
    try:
        from jaxlab.data import get_dataset_info

        info = get_dataset_info(config)
        hwc, classes = tuple(info.image_shape), info.num_classes
    except Exception as e:  # noqa: BLE001  (no data here: the flags give the shape)
        print(
            f"[inspect] dataset info unavailable ({e}); using the flags' input shape",
            file=sys.stderr,
        )
        classes = num_classes
    kwargs.setdefault("num_classes", classes)
    return name, kwargs, hwc


def main(argv: list[str]) -> None:
    del argv
    from jaxlab.analysis import module_summary, parameter_table
    from jaxlab.config import ConfigError
    from jaxlab.models import get_model

    try:
        name, kwargs, hwc = resolve(
            FLAGS.config, FLAGS.model, FLAGS.num_classes, FLAGS.image_size, FLAGS.channels
        )
        model = get_model(name, **kwargs)
        table = parameter_table(model, (FLAGS.batch_size, *hwc), flops=FLAGS.flops)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    args = ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
    print(f"model {name}({args}), input {list(hwc)}")
    print(table.format())
    if FLAGS.flax_summary:
        print(module_summary(model, (FLAGS.batch_size, *hwc)))


if __name__ == "__main__":
    app.run(main)
