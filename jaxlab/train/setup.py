"""Everything decided before the first step: distributed start-up, validation of the whole
config (so bad input fails before anything is written), durations, and the run record."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxlab import data, optim
from jaxlab.config import BEST_MODES, PARALLEL_MODES, ConfigError, check_choice, check_positive
from jaxlab.tasks import Optimizer, Task, TaskSetup, get_task, list_tasks
from jaxlab.tasks.base import DEFAULT_OPTIMIZER
from jaxlab.tasks.tta import parse_tta
from jaxlab.train.evaluation import Evaluator, build_evaluators
from jaxlab.train.state import init_context
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
    task: Task
    setup: TaskSetup
    evaluators: list[Evaluator]
    example_batch: dict[str, np.ndarray]  # one train example of zeros (the feature spec)
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


def optimizer_config(config: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
    """The config `create_optimizer` reads for the named optimizer `name`: the experiment
    config itself for 'default' (`config.optimizer`, `config.schedule`); for any other name
    a copy whose `optimizer` is `config.optimizers.<name>` and whose `schedule` is that
    section's `schedule` if it has one, else `config.schedule`."""
    if name == DEFAULT_OPTIMIZER:
        return config
    sections = config.get("optimizers") or {}
    if name not in sections:
        raise ConfigError(
            f"the task needs optimizer {name!r}: add config.optimizers.{name} (the keys of "
            f"config.optimizer); configured: {', '.join(sections) or 'none'}"
        )
    section = sections[name].to_dict()
    schedule = section.pop("schedule", None)
    out = ml_collections.ConfigDict(config.to_dict())
    out.optimizer = ml_collections.ConfigDict(section)
    if schedule is not None:
        out.schedule = ml_collections.ConfigDict(schedule)
    return out


class OptimizerTable(Mapping[str, Optimizer]):
    """The run's named optimizers, each built through `create_optimizer` / `create_schedule`
    when the task first asks for it ('default', and every `config.optimizers.<name>`)."""

    def __init__(self, config: ml_collections.ConfigDict, num_train_steps: int) -> None:
        self.config, self.num_train_steps = config, num_train_steps
        self.built: dict[str, Optimizer] = {}

    def __getitem__(self, name: str) -> Optimizer:
        if name not in self.built:
            sub = optimizer_config(self.config, name)
            try:
                self.built[name] = Optimizer(
                    tx=optim.create_optimizer(sub, self.num_train_steps),
                    schedule=optim.create_schedule(sub, self.num_train_steps),
                )
            except ConfigError as e:
                if name == DEFAULT_OPTIMIZER:
                    raise
                raise ConfigError(f"optimizers.{name}: {e}") from None
        return self.built[name]

    def __iter__(self) -> Iterator[str]:
        return iter((DEFAULT_OPTIMIZER, *(self.config.get("optimizers") or {})))

    def __len__(self) -> int:
        return 1 + len(self.config.get("optimizers") or {})

    def check_all_used(self) -> None:
        """Raises ConfigError for a `config.optimizers` section the task never asked for."""
        unused = sorted(set(self.config.get("optimizers") or {}) - set(self.built))
        if unused:
            raise ConfigError(
                f"config.optimizers has {', '.join(unused)}, which task "
                f"{self.config.task.name!r} does not use; it uses: {', '.join(self.built)}"
            )


def build_experiment(config: ml_collections.ConfigDict) -> Experiment:
    """Validates the whole config and builds dataset info, task, optimizers and evaluators.

    Raises ConfigError (one line, the valid choices) before anything is written.
    """
    _validate_common(config)
    data.validate_data_config(config, jax.process_count())
    info = data.get_dataset_info(config)
    spe = data.steps_per_epoch(config, info)
    num_steps = config.num_train_steps if config.num_train_steps > 0 else config.num_epochs * spe
    check_choice("task", config.task.name, list_tasks())
    optimizers = OptimizerTable(config, num_steps)
    setup = TaskSetup(
        config=config,
        info=info,
        num_train_steps=num_steps,
        steps_per_epoch=spe,
        axis_name="data" if config.parallel.mode == "pmap" else None,
        optimizers=optimizers,
    )
    task = get_task(setup)
    optimizers.check_all_used()
    example = info.example_batch(1)
    try:
        abstract = jax.eval_shape(
            lambda b: task.init_state(b, init_context(task, config.seed)), example
        )
    except ConfigError:
        raise
    except Exception as e:  # shape errors surface as many exception types inside flax
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in example.items())
        raise ConfigError(
            f"task {task.name!r} with model {config.model.get('name')!r} cannot initialize on "
            f"the {info.name} examples ({shapes}): {first}"
        ) from None
    eval_names = [*task.eval_metric_names]
    if config.best_metric and config.best_metric not in eval_names:
        raise ConfigError(
            f"unknown best_metric {config.best_metric!r}; valid choices: {', '.join(eval_names)}"
        )
    if config.eval_tta:
        parse_tta(config.eval_tta)
    evaluators = build_evaluators(task, setup)
    pretrained = None
    if config.init_from:
        pretrained = load_pretrained(config.init_from)
        try:
            variables = task.variables(abstract)
        except NotImplementedError as e:
            raise ConfigError(f"init_from: {e}") from None
        merge_pretrained(variables, pretrained, config.init_head)  # shape check, early
    elif config.model.get("kernel_init") == "lsuv" and not task.needs_data_init:
        raise ConfigError(f"model.kernel_init='lsuv' is not supported by task {task.name!r}")
    return Experiment(config, info, task, setup, evaluators, example, num_steps, spe, pretrained)


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
