"""The task `gan`: a generative adversarial network (Goodfellow et al., 2014) with the DCGAN
networks (jaxlab/models/dcgan.py), both updates in one compiled train step.

The discriminator D (logits l = D(x)) and the generator G (images G(z), z ~ N(0, I) of
`task.latent_dim` entries) play

    d_loss = -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z))))
           = softplus(-D(x)) + softplus(D(G(z)))                     (per example)
    g_loss = -log sigmoid(D(G(z))) = softplus(-D(G(z)))              'non_saturating'
    g_loss =  log(1 - sigmoid(D(G(z)))) = -softplus(D(G(z)))         'minimax'

`task.loss` chooses the generator's loss: the non-saturating one (the default; Goodfellow et
al.'s practical choice, which DCGAN uses) or the minimax one (the game's own value, whose
gradient vanishes where D rejects the samples confidently: kept for the comparison).

One train step (`train_step`) makes `task.d_steps` discriminator updates (a `lax.scan`, the
same real batch with fresh noise each time: the loop gives one batch per step) and then one
generator update, each with its own named optimizer (`config.optimizers.discriminator`,
`config.optimizers.generator`). The discriminator's step sees the generator's output
through `jax.lax.stop_gradient`, so its loss has exactly zero gradient with respect to the
generator; the generator's step differentiates through the discriminator but changes only
the generator. Each network's batch statistics change only in its own step:

- discriminator step: G runs in training mode (batch statistics) and its statistics update
  is dropped; D runs in training mode on the real batch and then on the fake batch
  (separate batches, as DCGAN's reference code: each normalizes with its own statistics),
  and its running statistics take both updates;
- generator step: G runs in training mode and keeps its statistics update; D runs in
  training mode (the gradient G gets is that of the D it was trained against) and its
  statistics update is dropped (DCGAN's PyTorch code lets this pass move D's running
  averages too; here the generator's update leaves D's state bitwise unchanged).

Evaluation (`eval_step`, mask-weighted): d_loss, g_loss, d_real (mean sigmoid(D(x))) and
d_fake (mean sigmoid(D(G(z)))) on each eval batch against as many fresh samples, both
networks in inference mode (running statistics). The losses of a GAN do not measure sample
quality (they measure the two players' balance): the configs keep the last checkpoints
(`best_metric = ''`) and score samples with the `sample_quality` evaluator.

`sample_images` draws G(z) mapped to [0, 1]. `task.sample_mode` 'eval' (default) runs G with
its running batch-norm statistics, so a sample does not depend on the others drawn with it;
'train' normalizes each sampled batch with its own statistics (what DCGAN's PyTorch code does,
never switching G to eval mode).

Options (`config.task`): `latent_dim` (default 100), `loss` ('non_saturating' |
'minimax'), `d_steps` (default 1), `sample_mode` ('eval' | 'train').
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.models.dcgan import DCGAN, to_model_range, to_unit_range
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.generative import GenerativeTask, require_unit_images

LOSSES = ("non_saturating", "minimax")
SAMPLE_MODES = ("eval", "train")
OPTIONS = ("name", "latent_dim", "loss", "d_steps", "sample_mode")


def discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Per-example `-log D(x) - log(1 - D(G(z)))` from the logits, `softplus(-real) +
    softplus(fake)` (stable for any logit)."""
    return jax.nn.softplus(-real_logits) + jax.nn.softplus(fake_logits)


def generator_loss(fake_logits: jax.Array, kind: str) -> jax.Array:
    """Per-example generator loss of the logits D(G(z)): 'non_saturating' `-log D(G(z)) =
    softplus(-l)`, 'minimax' `log(1 - D(G(z))) = -softplus(l)`."""
    check_choice("task.loss", kind, LOSSES)
    if kind == "non_saturating":
        return jax.nn.softplus(-fake_logits)
    return -jax.nn.softplus(fake_logits)


@flax.struct.dataclass
class GanState:
    """Both networks' variables ({'params': ..., 'batch_stats': ...}) and optimizer states."""

    generator: PyTree
    discriminator: PyTree
    generator_opt: PyTree
    discriminator_opt: PyTree


def _split(variables: PyTree) -> tuple[PyTree, PyTree]:
    """(params, the other collections) of a variables dict."""
    variables = dict(variables)
    return variables.pop("params"), variables


class GanTask(GenerativeTask):
    """The task `gan` (see the module docstring)."""

    name = "gan"
    rng_streams = ("params", "noise")
    optimizer_names = ("generator", "discriminator")
    train_metric_names = ("d_loss", "g_loss", "d_real", "d_fake")
    eval_metric_names = ("d_loss", "g_loss", "d_real", "d_fake")

    def __init__(self, setup: TaskSetup) -> None:
        require_unit_images(setup, self.name)
        config = setup.config
        options = config.task
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(
                f"task 'gan' has no option(s) {', '.join(f'task.{k}' for k in unknown)}; "
                f"valid: {', '.join(f'task.{k}' for k in OPTIONS[1:])}"
            )
        self.latent_dim = options.get("latent_dim", 100)
        self.loss = options.get("loss", "non_saturating")
        self.d_steps = options.get("d_steps", 1)
        self.sample_mode = options.get("sample_mode", "eval")
        check_positive("task.latent_dim", self.latent_dim, integer=True)
        check_choice("task.loss", self.loss, LOSSES)
        check_positive("task.d_steps", self.d_steps, integer=True)
        check_choice("task.sample_mode", self.sample_mode, SAMPLE_MODES)
        self.image_shape = tuple(setup.info.features["image"].shape)
        model = build_model(
            config.model.name,
            {k: v for k, v in config.model.to_dict().items() if k != "name"},
            image_shape=self.image_shape,
            bn_axis_name=setup.axis_name,
        )
        if not isinstance(model, DCGAN):
            raise ConfigError(f"task 'gan' needs model 'dcgan', got {config.model.name!r}")
        self.output = model.output
        self.gen_model = model.generator()
        self.disc_model = model.discriminator()
        self.sample_model = model.generator(bn_axis_name=None)  # drawn outside the device map
        self.gen_tx = setup.optimizer("generator").tx
        self.disc_tx = setup.optimizer("discriminator").tx

    # --- state -------------------------------------------------------------------------

    def init_state(self, batch: Batch, ctx: StepContext) -> GanState:
        """Both networks initialized (on one latent and one image) and their optimizers."""
        k_gen, k_disc = jax.random.split(ctx.rng("params"))
        z = jnp.zeros((1, self.latent_dim), jnp.float32)
        gen = self.gen_model.init(k_gen, z, train=False)
        disc = self.disc_model.init(k_disc, batch["image"][:1], train=False)
        return GanState(
            gen, disc, self.gen_tx.init(gen["params"]), self.disc_tx.init(disc["params"])
        )

    # --- the two players ---------------------------------------------------------------

    def latents(self, key: jax.Array, num: int) -> jax.Array:
        """`num` latent vectors z ~ N(0, I) [num, latent_dim]."""
        return jax.random.normal(key, (num, self.latent_dim), jnp.float32)

    def generate(
        self, gen: PyTree, z: jax.Array, *, train: bool, model: Any = None
    ) -> tuple[jax.Array, PyTree]:
        """(G(z) in the model's range, G's updated non-parameter collections) for variables
        `gen`; in inference mode the collections come back unchanged."""
        model = model or self.gen_model
        _, rest = _split(gen)
        if not train:
            return model.apply(gen, z, train=False), rest
        images, new_rest = model.apply(gen, z, train=True, mutable=list(rest))
        return images, {**rest, **new_rest}

    def discriminate(
        self, disc: PyTree, images: jax.Array, *, train: bool
    ) -> tuple[jax.Array, PyTree]:
        """(logits D(images) [N], D's updated non-parameter collections) for variables `disc`."""
        _, rest = _split(disc)
        if not train:
            return self.disc_model.apply(disc, images, train=False), rest
        logits, new_rest = self.disc_model.apply(disc, images, train=True, mutable=list(rest))
        return logits, {**rest, **new_rest}

    def discriminator_objective(
        self, disc_params: PyTree, state: GanState, real: jax.Array, key: jax.Array
    ) -> tuple[jax.Array, tuple[PyTree, dict[str, jax.Array]]]:
        """The discriminator step's mean loss on `real` (in the model's range) and `len(real)`
        samples drawn with `key` (through `stop_gradient`), with (D's new collections, its
        per-example values). A function of the generator's state too, so tests can take its
        gradient with respect to the generator: exactly zero."""
        fake, _ = self.generate(state.generator, self.latents(key, real.shape[0]), train=True)
        fake = jax.lax.stop_gradient(fake)  # the discriminator's step never reaches G
        _, rest = _split(state.discriminator)
        real_logits, rest = self.discriminate({"params": disc_params, **rest}, real, train=True)
        fake_logits, rest = self.discriminate({"params": disc_params, **rest}, fake, train=True)
        per_example = discriminator_loss(real_logits, fake_logits)
        values = {
            "d_loss": per_example,
            "d_real": jax.nn.sigmoid(real_logits),
            "d_fake": jax.nn.sigmoid(fake_logits),
        }
        return jnp.mean(per_example), (rest, values)

    def generator_objective(
        self, gen_params: PyTree, state: GanState, num: int, key: jax.Array
    ) -> tuple[jax.Array, tuple[PyTree, jax.Array]]:
        """The generator step's mean loss over `num` samples drawn with `key`, with (G's new
        collections, the per-example losses); D's collections update is dropped."""
        _, rest = _split(state.generator)
        fake, rest = self.generate(
            {"params": gen_params, **rest}, self.latents(key, num), train=True
        )
        fake_logits, _ = self.discriminate(state.discriminator, fake, train=True)
        per_example = generator_loss(fake_logits, self.loss)
        return jnp.mean(per_example), (rest, per_example)

    def discriminator_update(
        self, state: GanState, real: jax.Array, key: jax.Array, ctx: StepContext
    ) -> tuple[GanState, dict[str, jax.Array]]:
        """One discriminator update on `real` (model range): only D's parameters, batch
        statistics and optimizer state change. Returns the per-example values before it."""
        disc_params, _ = _split(state.discriminator)
        grad_fn = jax.grad(self.discriminator_objective, has_aux=True)
        grads, (rest, values) = grad_fn(disc_params, state, real, key)
        updates, disc_opt = self.disc_tx.update(
            ctx.pmean(grads), state.discriminator_opt, disc_params
        )
        disc = {"params": optax.apply_updates(disc_params, updates), **rest}
        return state.replace(discriminator=disc, discriminator_opt=disc_opt), values

    def generator_update(
        self, state: GanState, num: int, key: jax.Array, ctx: StepContext
    ) -> tuple[GanState, jax.Array]:
        """One generator update on `num` samples: only G's parameters, batch statistics and
        optimizer state change. Returns the per-example losses before it."""
        gen_params, _ = _split(state.generator)
        grad_fn = jax.grad(self.generator_objective, has_aux=True)
        grads, (rest, per_example) = grad_fn(gen_params, state, num, key)
        updates, gen_opt = self.gen_tx.update(ctx.pmean(grads), state.generator_opt, gen_params)
        gen = {"params": optax.apply_updates(gen_params, updates), **rest}
        return state.replace(generator=gen, generator_opt=gen_opt), per_example

    # --- steps -------------------------------------------------------------------------

    def train_step(
        self, state: GanState, batch: Batch, ctx: StepContext
    ) -> tuple[GanState, Metrics]:
        """`d_steps` discriminator updates (lax.scan), then one generator update."""
        real = to_model_range(batch["image"], self.output)
        keys = jax.random.split(ctx.rng("noise"), self.d_steps + 1)

        def d_step(s: GanState, key: jax.Array) -> tuple[GanState, dict[str, jax.Array]]:
            return self.discriminator_update(s, real, key, ctx)

        state, values = jax.lax.scan(d_step, state, keys[:-1])
        state, g_loss = self.generator_update(state, real.shape[0], keys[-1], ctx)
        metrics = {name: average(values[name]) for name in ("d_loss", "d_real", "d_fake")}
        return state, {**metrics, "g_loss": average(g_loss)}

    def eval_step(
        self, state: GanState, batch: Batch, carry: PyTree, ctx: StepContext
    ) -> tuple[PyTree, Metrics]:
        """The losses and D's mean probabilities on the batch's real rows (mask-weighted)
        and as many samples, both networks in inference mode."""
        real = to_model_range(batch["image"], self.output)
        z = self.latents(ctx.rng("noise"), real.shape[0])
        fake, _ = self.generate(state.generator, z, train=False)
        real_logits, _ = self.discriminate(state.discriminator, real, train=False)
        fake_logits, _ = self.discriminate(state.discriminator, fake, train=False)
        mask = batch["mask"]
        return carry, {
            "d_loss": average(discriminator_loss(real_logits, fake_logits), mask),
            "g_loss": average(generator_loss(fake_logits, self.loss), mask),
            "d_real": average(jax.nn.sigmoid(real_logits), mask),
            "d_fake": average(jax.nn.sigmoid(fake_logits), mask),
        }

    def sample_images(self, task_state: GanState, key: jax.Array, num: int) -> jax.Array:
        """`num` generator samples G(z) in [0, 1] (see `task.sample_mode`)."""
        z = self.latents(key, num)
        images, _ = self.generate(
            task_state.generator, z, train=self.sample_mode == "train", model=self.sample_model
        )
        return jnp.clip(to_unit_range(images, self.output), 0.0, 1.0)


def make_gan_task(setup: TaskSetup) -> GanTask:
    """The registry's factory of the task `gan`."""
    return GanTask(setup)
