"""Task registry: `get_task(setup)` builds the objective named by `config.task.name`.

A task factory takes a `TaskSetup` (config, dataset info, duration, device axis, named
optimizers) and returns a `Task`. Register a new objective with `register_task(name,
factory)`; `list_tasks()` lists the names.
"""

from __future__ import annotations

from collections.abc import Callable

from jaxlab.config import check_choice
from jaxlab.tasks.autoencoder import make_autoencoder_task
from jaxlab.tasks.base import Optimizer, StepContext, Task, TaskSetup
from jaxlab.tasks.byol import make_byol_task
from jaxlab.tasks.captioning import make_captioning_task
from jaxlab.tasks.classic import (
    make_knn_task,
    make_linear_svm_task,
    make_softmax_regression_task,
)
from jaxlab.tasks.classification import make_classification_task
from jaxlab.tasks.cpc import make_cpc_task
from jaxlab.tasks.diffusion import make_diffusion_task
from jaxlab.tasks.dino import make_dino_task
from jaxlab.tasks.flow import make_flow_task
from jaxlab.tasks.gan import make_gan_task
from jaxlab.tasks.language_model import make_language_model_task
from jaxlab.tasks.masked_lm import make_masked_lm_task
from jaxlab.tasks.metric_learning import make_metric_learning_task
from jaxlab.tasks.moco import make_moco_task
from jaxlab.tasks.permutation_lm import make_permutation_lm_task
from jaxlab.tasks.pixel_baseline import PixelBaselineTask
from jaxlab.tasks.pixelcnn import make_pixelcnn_task
from jaxlab.tasks.pointer import make_pointer_task
from jaxlab.tasks.pretext import (
    make_colorization_task,
    make_inpainting_task,
    make_jigsaw_task,
    make_rotation_task,
)
from jaxlab.tasks.segmentation import make_segmentation_task
from jaxlab.tasks.seq2seq import make_seq2seq_task
from jaxlab.tasks.sequence_classification import make_sequence_classification_task
from jaxlab.tasks.simclr import make_simclr_task
from jaxlab.tasks.supervised import SupervisedState, SupervisedTask
from jaxlab.tasks.vae import make_vae_task
from jaxlab.tasks.video_frames import make_video_frames_task
from jaxlab.tasks.word2vec import make_word2vec_task

TaskFactory = Callable[[TaskSetup], Task]
_REGISTRY: dict[str, TaskFactory] = {
    "classification": make_classification_task,
    # sequences
    "language_model": make_language_model_task,
    "masked_lm": make_masked_lm_task,
    "permutation_lm": make_permutation_lm_task,
    "sequence_classification": make_sequence_classification_task,
    "seq2seq": make_seq2seq_task,
    "pointer": make_pointer_task,
    "word2vec": make_word2vec_task,
    # generative models
    "autoencoder": make_autoencoder_task,
    "vae": make_vae_task,
    "gan": make_gan_task,
    "flow": make_flow_task,
    "diffusion": make_diffusion_task,
    "pixel_baseline": PixelBaselineTask,
    "pixelcnn": make_pixelcnn_task,
    # dense and temporal vision
    "video_frames": make_video_frames_task,
    "captioning": make_captioning_task,
    # representation learning
    "simclr": make_simclr_task,
    "moco": make_moco_task,
    "cpc": make_cpc_task,
    "metric_learning": make_metric_learning_task,
    "byol": make_byol_task,
    "dino": make_dino_task,
    "rotation": make_rotation_task,
    "jigsaw": make_jigsaw_task,
    "inpainting": make_inpainting_task,
    "colorization": make_colorization_task,
    # classic classifiers
    "knn": make_knn_task,
    "linear_svm": make_linear_svm_task,
    "softmax_regression": make_softmax_regression_task,
    "segmentation": make_segmentation_task,
}

__all__ = [
    "Optimizer",
    "StepContext",
    "SupervisedState",
    "SupervisedTask",
    "Task",
    "TaskSetup",
    "get_task",
    "list_tasks",
    "register_task",
]


def list_tasks() -> list[str]:
    """Returns the registered task names."""
    return sorted(_REGISTRY)


def register_task(name: str, factory: TaskFactory) -> None:
    """Makes `config.task.name = name` build its task with `factory(setup)`."""
    _REGISTRY[name] = factory


def get_task(setup: TaskSetup) -> Task:
    """Builds the task named by `setup.config.task.name`; ConfigError lists the names."""
    check_choice("task", setup.config.task.name, list_tasks())
    return _REGISTRY[setup.config.task.name](setup)
