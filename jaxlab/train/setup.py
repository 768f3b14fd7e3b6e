"""Everything decided before the first step: distributed start-up, validation of the whole
config (so bad input fails before anything is written), durations, and the run record."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import sys
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import optax

from jaxlab import data, optim
from jaxlab.config import BEST_MODES, PARALLEL_MODES, ConfigError, check_choice, check_positive
from jaxlab.models import get_model
from jaxlab.tasks import Task, get_task
from jaxlab.tasks.tta import parse_tta
from jaxlab.train.transfer import load_pretrained, merge_pretrained

PACKAGES = (
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "orbax-checkpoint",
    "clu",
    "tensorflow-cpu",
    "tensorflow-datasets",
    "ml-collections",
    "numpy",
)


@dataclasses.dataclass
class Experiment:
    """The resolved pieces of a run."""

    config: ml_collections.ConfigDict
    info: data.DatasetInfo
    model: nn.Module
    task: Task
    tx: optax.GradientTransformationExtraArgs
    schedule: optax.Schedule
    num_train_steps: int
    steps_per_epoch: int
    pretrained: dict[str, Any] | None = None  # from config.init_from (host arrays)


def maybe_initialize_distributed(config: ml_collections.ConfigDict) -> bool:
    """Starts `jax.distributed` when `config.distributed.enabled` or the environment asks.

    Environment: JAXLAB_COORDINATOR_ADDRESS, JAXLAB_NUM_PROCESSES, JAXLAB_PROCESS_ID override
    the config. On CPU, collectives go through gloo. Must run before JAX touches a device.
    Returns whether it initialized (False when not asked or already running).
    """
    d = config.distributed
    address = os.environ.get("JAXLAB_COORDINATOR_ADDRESS", d.coordinator_address)
    if not (d.enabled or os.environ.get("JAXLAB_COORDINATOR_ADDRESS")):
        return False
    from jax._src import distributed as jax_distributed

    if jax_distributed.global_state.client is not None:
        return False
    num = int(os.environ.get("JAXLAB_NUM_PROCESSES", d.num_processes))
    pid = int(os.environ.get("JAXLAB_PROCESS_ID", d.process_id))
    if not address:
        raise ConfigError("distributed.enabled needs distributed.coordinator_address (host:port)")
    if num < 1 or not 0 <= pid < num:
        raise ConfigError(f"distributed.process_id must be in [0, {num}), got {pid}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=address, num_processes=num, process_id=pid)
    return True


def _validate_common(config: ml_collections.ConfigDict) -> None:
    check_positive("seed", config.seed, allow_zero=True, integer=True)
    check_positive("batch_size", config.batch_size, integer=True)
    check_positive("eval_batch_size", config.eval_batch_size, integer=True)
    check_positive("log_every_steps", config.log_every_steps, integer=True)
    if not isinstance(config.log_norms, bool):
        raise ConfigError(f"log_norms must be true or false, got {config.log_norms!r}")
    check_positive("eval_every_steps", config.eval_every_steps, allow_zero=True, integer=True)
    check_positive(
        "checkpoint_every_steps", config.checkpoint_every_steps, allow_zero=True, integer=True
    )
    check_positive("keep_checkpoints", config.keep_checkpoints, integer=True)
    check_positive(
        "early_stopping.patience", config.early_stopping.patience, allow_zero=True, integer=True
    )
    check_positive("early_stopping.min_delta", config.early_stopping.min_delta, allow_zero=True)
    if config.early_stopping.patience and not config.eval_every_steps:
        raise ConfigError(
            "early_stopping.patience needs eval_every_steps > 0 (it counts evaluations)"
        )
    check_choice("parallel mode", config.parallel.mode, PARALLEL_MODES)
    check_choice("best_mode", config.best_mode, BEST_MODES)
    steps, epochs = config.num_train_steps, config.num_epochs
    for name, v in (("num_train_steps", steps), ("num_epochs", epochs)):
        if isinstance(v, bool) or not isinstance(v, int) or (v <= 0 and v != -1):
            raise ConfigError(f"{name} must be a positive integer or -1 (unset), got {v!r}")
    if (steps > 0) == (epochs > 0):
        raise ConfigError(
            "set exactly one of num_train_steps and num_epochs (the other to -1), "
            f"got num_train_steps={steps}, num_epochs={epochs}"
        )
    n_dev, n_proc = jax.device_count(), jax.process_count()
    for key in ("batch_size", "eval_batch_size"):
        if config[key] % n_dev:
            raise ConfigError(
                f"{key} ({config[key]}) must be divisible by the device count ({n_dev})"
            )
        if config[key] % n_proc:
            raise ConfigError(
                f"{key} ({config[key]}) must be divisible by the process count ({n_proc})"
            )


def _model_kwargs(config: ml_collections.ConfigDict, info: data.DatasetInfo) -> dict[str, Any]:
    kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
    kwargs.setdefault("num_classes", info.num_classes)
    if config.parallel.mode == "pmap":
        kwargs["bn_axis_name"] = "data"
    return kwargs


def build_experiment(config: ml_collections.ConfigDict) -> Experiment:
    """Validates the whole config and builds dataset info, model, task and optimizer.

    Raises ConfigError (one line, the valid choices) before anything is written.
    """
    _validate_common(config)
    data.validate_data_config(config, jax.process_count())
    info = data.get_dataset_info(config)
    spe = data.steps_per_epoch(config, info)
    num_steps = config.num_train_steps if config.num_train_steps > 0 else config.num_epochs * spe
    model = get_model(config.model.name, **_model_kwargs(config, info))
    x = jax.ShapeDtypeStruct((1, *info.image_shape), jax.numpy.float32)
    try:
        variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    except ConfigError:
        raise
    except Exception as e:  # shape errors surface as many exception types inside flax
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"model {config.model.name!r} cannot take inputs of shape {info.image_shape}: {first}"
        ) from None
    # Auxiliary classifiers (GoogLeNet) add their weighted losses in training.
    aux = (
        {"aux_loss_weight": float(model.aux_loss_weight)}
        if getattr(model, "aux_logits", False)
        else {}
    )
    task = get_task(config, info.num_classes, **aux)
    if config.best_metric and config.best_metric not in task.eval_metric_names:
        raise ConfigError(
            f"unknown best_metric {config.best_metric!r}; valid choices: "
            f"{', '.join(task.eval_metric_names)}"
        )
    if config.eval_tta:
        parse_tta(config.eval_tta)
        if "accuracy" not in task.eval_metric_names:
            raise ConfigError(f"eval_tta needs a classification task, got {config.task.name!r}")
    tx = optim.create_optimizer(config, num_steps)
    optim.validate_param_groups(config, variables["params"])
    schedule = optim.create_schedule(config, num_steps)
    pretrained = None
    if config.init_from:
        pretrained = load_pretrained(config.init_from)
        merge_pretrained(variables, pretrained, config.init_head)  # shape check, early
    return Experiment(config, info, model, task, tx, schedule, num_steps, spe, pretrained)


def run_record(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The resolved config with library versions and device topology (for config.json)."""
    versions = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    devices = jax.devices()
    topology = {
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "process_count": jax.process_count(),
        "process_index": jax.process_index(),
        "host": platform.node(),
    }
    return {
        "config": json.loads(config.to_json_best_effort()),
        "versions": versions,
        "topology": topology,
        "command": sys.argv,
    }
