"""Prints a model's parameter table: every layer with the formula behind its count, the
total, the batch statistics and the FLOPs of one forward pass (XLA cost analysis).

    python -m scripts.inspect --model resnet18 [--num_classes 1000 --image_size 224 --channels 3]
    python -m scripts.inspect --config configs/cifar10_resnet20.py
    python -m scripts.inspect --model lenet5 --image_size 32 --channels 1 --flax_summary
    python -m scripts.inspect --model rnn_lm --vocab_size 65 --seq_len 64

With --config the model (`config.model.name` and its other keys) comes from the config and
the input shape and classes from its dataset (`jaxlab.data.get_dataset_info`), falling back
to the flags when the dataset cannot be read. Models with a `vocab_size` field read int32
tokens [seq_len] (or, with vocab_size 0, float features [seq_len, channels]); the others
images. Recurrent cells get one row each and a line with their formula and count ("lstm
layer 0: 4*((10+20)*20 + 20) + 4*20 = 2560"). Nothing is allocated: shapes come from
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
flags.DEFINE_integer("seq_len", 32, "Steps of a sequence model's input (without --config).")
flags.DEFINE_integer(
    "vocab_size", 0, "Vocabulary of a token model (without --config); 0: float features."
)
flags.DEFINE_integer("batch_size", 1, "Batch size of the forward pass whose FLOPs are counted.")
flags.DEFINE_bool("flops", True, "Compile the forward pass to report its FLOPs.")
flags.DEFINE_bool("flax_summary", False, "Also print flax's nn.tabulate table of the model.")
config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)


def _sequence_input(
    fields, kwargs: dict, seq_len: int, vocab_size: int, channels: int
) -> tuple[tuple[int, ...], str]:
    """The input of a model with a `vocab_size` field: tokens [T] or features [T, D]."""
    if vocab_size > 0 and not kwargs.get("vocab_size"):
        kwargs["vocab_size"] = vocab_size
    if kwargs.get("vocab_size", fields.get("vocab_size")):
        return (seq_len,), "int32"
    return (seq_len, channels), "float32"


def resolve(
    config,
    model: str | None,
    num_classes: int,
    image_size: int,
    channels: int,
    seq_len: int = 32,
    vocab_size: int = 0,
):
    """Returns (model name, model kwargs, input shape without the batch axis, input dtype)
    from the config, else from the flags."""
    from jaxlab.config import ConfigError
    from jaxlab.models import model_fields

    hwc = (image_size, image_size, channels)
    if config is None:
        if not model:
            raise ConfigError("give --model NAME or --config FILE")
        fields = model_fields(model)
        kwargs = {"num_classes": num_classes} if "num_classes" in fields else {}
        if "vocab_size" in fields:
            return model, kwargs, *_sequence_input(fields, kwargs, seq_len, vocab_size, channels)
        return model, kwargs, hwc, "float32"
    kwargs = dict(config.model.to_dict())
    name = kwargs.pop("name")
    fields = model_fields(name)
    try:
        from jaxlab.data import get_dataset_info

        info = get_dataset_info(config)
        classes = info.num_classes
        features = {**info.eval_features, **info.features}
        key = next((k for k in ("image", "inputs", "x") if k in features), None)
        if key is None:
            raise ConfigError(f"no image, inputs or x feature (features: {', '.join(features)})")
        shape, dtype = features[key].shape, features[key].dtype
        if info.vocab_size and "vocab_size" in fields and not kwargs.get("vocab_size"):
            kwargs["vocab_size"] = info.vocab_size
    except Exception as e:  # noqa: BLE001  (no data here: the flags give the shape)
        print(
            f"[inspect] dataset info unavailable ({e}); using the flags' input shape",
            file=sys.stderr,
        )
        classes = num_classes
        if "vocab_size" in fields:
            shape, dtype = _sequence_input(fields, kwargs, seq_len, vocab_size, channels)
        else:
            shape, dtype = hwc, "float32"
    if "num_classes" in fields and classes is not None:
        kwargs.setdefault("num_classes", classes)
    return name, kwargs, tuple(shape), dtype


def recurrent_lines(table) -> list[str]:
    """One line per recurrent cell of a ParamTable: "lstm layer 0: 4*((10+20)*20 + 20) +
    4*20 = 2,560" (" backward" after the layer number for the backward direction)."""
    from jaxlab.nn.recurrent import CELLS, recurrent_layer_label

    return [
        f"{recurrent_layer_label(row.path, row.kind)}: {row.formula} = {row.count:,}"
        for row in table.rows
        if row.kind in CELLS
    ]


def main(argv: list[str]) -> None:
    del argv
    import jax.numpy as jnp

    from jaxlab.analysis import module_summary, parameter_table
    from jaxlab.config import ConfigError
    from jaxlab.models import get_model

    try:
        name, kwargs, shape, dtype = resolve(
            FLAGS.config,
            FLAGS.model,
            FLAGS.num_classes,
            FLAGS.image_size,
            FLAGS.channels,
            FLAGS.seq_len,
            FLAGS.vocab_size,
        )
        model = get_model(name, **kwargs)
        table = parameter_table(
            model, (FLAGS.batch_size, *shape), flops=FLAGS.flops, dtype=jnp.dtype(dtype)
        )
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    args = ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
    kind = "" if dtype == "float32" else f" {dtype}"
    print(f"model {name}({args}), input {list(shape)}{kind}")
    print(table.format())
    for line in recurrent_lines(table):
        print(line)
    from jaxlab.models.autoencoder import explain_parameter_counts

    for line in explain_parameter_counts(table.rows):  # autoencoders: the bias asymmetry
        print(line)
    if FLAGS.flax_summary:
        print(module_summary(model, (FLAGS.batch_size, *shape), dtype=jnp.dtype(dtype)))


if __name__ == "__main__":
    app.run(main)
