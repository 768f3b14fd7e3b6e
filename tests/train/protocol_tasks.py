"""Small tasks that exercise the task protocol (imported by the protocol tests and by their
subprocesses; importing registers them). Each is written the way a family of the course
would be: in its own code, through `jaxlab.tasks.register_task`, without touching the loop.

- `test_gan`: a generator and a discriminator (MLPs) on the 2-D ring of `toy2d`, two named
  optimizers, two updates per step, and a `samples` evaluator drawing an image.
- `test_char_rnn`: a recurrent LM on `markov_tokens` windows, the hidden state carried from
  batch to batch (stop-gradient), reset at each epoch start, and through the eval batches.
- `test_segmentation`: a per-pixel classifier on `shapes_seg` with the ignore label 255 and
  a confusion-matrix mIoU over the whole eval set; the last class is never predicted.
- `test_contrastive`: NT-Xent over two views of each digit, negatives from the global batch.
"""

from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from clu import metrics as clu_metrics

from jaxlab import losses
from jaxlab.metrics import ConfusionMatrix, average
from jaxlab.tasks import StepContext, Task, TaskSetup, register_task
from jaxlab.train import EvalResult, Evaluator

Metrics = dict[str, Any]


class MLP(nn.Module):
    features: tuple[int, ...]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, f in enumerate(self.features):
            x = nn.Dense(f)(x)
            if i < len(self.features) - 1:
                x = nn.relu(x)
        return x


# --- 1. two models, two optimizers ---------------------------------------------------------


@flax.struct.dataclass
class GanState:
    gen: Any
    disc: Any
    gen_opt: Any
    disc_opt: Any


class ToyGan(Task):
    name = "test_gan"
    rng_streams = ("params", "dropout", "noise")
    optimizer_names = ("generator", "discriminator")
    train_metric_names = ("d_loss", "g_loss")
    eval_metric_names = ("d_loss", "g_loss")
    latent = 4

    def __init__(self, setup: TaskSetup) -> None:
        self.gen_model, self.disc_model = MLP((16, 2)), MLP((16, 1))
        self.gen_tx = setup.optimizer("generator").tx
        self.disc_tx = setup.optimizer("discriminator").tx

    def init_state(self, batch, ctx: StepContext) -> GanState:
        k_gen, k_disc = jax.random.split(ctx.rng("params"))
        gen = self.gen_model.init(k_gen, jnp.zeros((1, self.latent)))["params"]
        disc = self.disc_model.init(k_disc, batch["x"][:1])["params"]
        return GanState(gen, disc, self.gen_tx.init(gen), self.disc_tx.init(disc))

    def generate(self, gen: Any, key: jax.Array, n: int) -> jax.Array:
        z = jax.random.normal(key, (n, self.latent))
        return self.gen_model.apply({"params": gen}, z)

    def _losses(self, gen, disc, real, key):
        fake = self.generate(gen, key, real.shape[0])
        d_real = self.disc_model.apply({"params": disc}, real)[:, 0]
        d_fake = self.disc_model.apply({"params": disc}, jax.lax.stop_gradient(fake))[:, 0]
        d_loss = optax.sigmoid_binary_cross_entropy(d_real, 1.0) + (
            optax.sigmoid_binary_cross_entropy(d_fake, 0.0)
        )
        g_loss = optax.sigmoid_binary_cross_entropy(
            self.disc_model.apply({"params": disc}, fake)[:, 0], 1.0
        )
        return d_loss, g_loss

    def discriminator_update(self, state: GanState, batch, ctx: StepContext) -> GanState:
        """The discriminator's step: only its parameters and optimizer state change."""
        key = jax.random.fold_in(ctx.rng("noise"), 0)

        def loss(disc):
            return jnp.mean(self._losses(state.gen, disc, batch["x"], key)[0])

        grads = ctx.pmean(jax.grad(loss)(state.disc))
        updates, disc_opt = self.disc_tx.update(grads, state.disc_opt, state.disc)
        return state.replace(disc=optax.apply_updates(state.disc, updates), disc_opt=disc_opt)

    def generator_update(self, state: GanState, batch, ctx: StepContext) -> GanState:
        """The generator's step: only its parameters and optimizer state change."""
        key = jax.random.fold_in(ctx.rng("noise"), 1)

        def loss(gen):
            return jnp.mean(self._losses(gen, state.disc, batch["x"], key)[1])

        grads = ctx.pmean(jax.grad(loss)(state.gen))
        updates, gen_opt = self.gen_tx.update(grads, state.gen_opt, state.gen)
        return state.replace(gen=optax.apply_updates(state.gen, updates), gen_opt=gen_opt)

    def train_step(self, state: GanState, batch, ctx: StepContext):
        d_loss, g_loss = self._losses(
            state.gen, state.disc, batch["x"], jax.random.fold_in(ctx.rng("noise"), 0)
        )
        state = self.generator_update(self.discriminator_update(state, batch, ctx), batch, ctx)
        return state, {"d_loss": average(d_loss), "g_loss": average(g_loss)}

    def eval_step(self, state: GanState, batch, carry, ctx: StepContext):
        d_loss, g_loss = self._losses(state.gen, state.disc, batch["x"], ctx.rng("noise"))
        return carry, {
            "d_loss": average(d_loss, batch["mask"]),
            "g_loss": average(g_loss, batch["mask"]),
        }

    def evaluators(self):
        return {"samples": SampleImage}


class SampleImage(Evaluator):
    """Draws generator samples from the evaluator's rng and renders their 2-D histogram."""

    def __init__(self, task: ToyGan, setup: TaskSetup, options) -> None:
        self.name = "samples"
        self.every_steps = int(options.get("every_steps", 0))
        self.num = int(options.get("num", 256))
        self.task = task

    def run(self, ctx) -> EvalResult:
        gen = ctx.host(ctx.state.task.gen)
        points = np.asarray(self.task.generate(gen, ctx.rng, self.num))
        hist, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=16, range=[[-3, 3]] * 2)
        image = (hist / max(hist.max(), 1.0))[..., None].astype(np.float32)
        return EvalResult(scalars={"spread": float(points.std())}, images={"histogram": image})


register_task("test_gan", ToyGan)


# --- 2. a recurrent state carried across batches ------------------------------------------


@flax.struct.dataclass
class RnnState:
    params: Any
    opt_state: Any
    hidden: jax.Array  # [B, H]: the carry at the end of the previous window, per strip


class CharRnnModel(nn.Module):
    vocab: int
    hidden: int = 16

    @nn.compact
    def __call__(self, tokens: jax.Array, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = nn.Embed(self.vocab, 8)(tokens)
        cell = nn.scan(
            nn.SimpleCell,
            variable_broadcast="params",
            split_rngs={"params": False},
            in_axes=1,
            out_axes=1,
        )(features=self.hidden)
        h, ys = cell(h, x)
        return nn.Dense(self.vocab)(ys), h


class CharRnn(Task):
    name = "test_char_rnn"
    train_metric_names = ("loss",)
    eval_metric_names = ("loss",)

    def __init__(self, setup: TaskSetup) -> None:
        self.vocab = setup.info.vocab_size
        self.model = CharRnnModel(self.vocab)
        self.opt = setup.optimizer()
        self.batch_size = setup.config.batch_size

    def zeros(self, n: int) -> jax.Array:
        return jnp.zeros((n, self.model.hidden), jnp.float32)

    def init_state(self, batch, ctx: StepContext) -> RnnState:
        params = self.model.init(ctx.rng("params"), batch["inputs"][:1], self.zeros(1))["params"]
        return RnnState(params, self.opt.tx.init(params), self.zeros(self.batch_size))

    def train_step(self, state: RnnState, batch, ctx: StepContext):
        # Under jit the batch is global: row b continues strip b of the previous batch.
        h0 = jnp.where(ctx.epoch_start, jnp.zeros_like(state.hidden), state.hidden)

        def loss_fn(params):
            logits, h = self.model.apply({"params": params}, batch["inputs"], h0)
            loss = losses.softmax_cross_entropy(logits, batch["targets"])
            return jnp.mean(loss), (h, loss)

        (_, (h, loss)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = self.opt.tx.update(ctx.pmean(grads), state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        hidden = jax.lax.stop_gradient(h)  # truncated BPTT: no gradient into past windows
        return RnnState(params, opt_state, hidden), {"loss": average(loss)}

    def init_eval_carry(self, state: RnnState, batch) -> jax.Array:
        return self.zeros(batch["inputs"].shape[0])

    def eval_step(self, state: RnnState, batch, carry, ctx: StepContext):
        logits, h = self.model.apply({"params": state.params}, batch["inputs"], carry)
        loss = losses.softmax_cross_entropy(logits, batch["targets"])
        return h, {"loss": average(loss, batch["mask"])}


register_task("test_char_rnn", CharRnn)


# --- 3. per-pixel labels, ignore label, confusion matrix ----------------------------------


class TinySegNet(nn.Module):
    classes: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(nn.Conv(8, (3, 3))(x))
        x = nn.relu(nn.Conv(8, (3, 3))(x))
        logits = nn.Conv(self.classes - 1, (1, 1))(x)
        # The last class is never predicted (and never labelled in shapes_seg): its IoU is
        # undefined and must be left out of the mean.
        never = jnp.full(logits.shape[:-1] + (1,), -1e9, logits.dtype)
        return jnp.concatenate([logits, never], axis=-1)


@flax.struct.dataclass
class SegState:
    params: Any
    opt_state: Any


@flax.struct.dataclass  # a subclass of a clu metric must be a pytree of its own
class IgnoredFraction(clu_metrics.CollectingMetric.from_outputs(("label", "mask"))):
    """Collected outputs computed on the host: the fraction of the real examples' pixels
    labelled 255 (the padding rows are collected with their mask 0 and dropped here)."""

    def compute(self) -> float:
        values = super().compute()
        return float(np.mean(values["label"][values["mask"] > 0] == 255))


class Segmentation(Task):
    name = "test_segmentation"
    train_metric_names = ("loss", "pixel_accuracy")
    eval_metric_names = ("loss", "iou/mean_iou", "iou/pixel_accuracy", "ignored")

    def __init__(self, setup: TaskSetup) -> None:
        self.classes = setup.info.num_classes + 1  # one class beyond the dataset's: absent
        self.model = TinySegNet(self.classes)
        self.opt = setup.optimizer()

    def init_state(self, batch, ctx: StepContext) -> SegState:
        params = self.model.init(ctx.rng("params"), batch["image"][:1])["params"]
        return SegState(params, self.opt.tx.init(params))

    def _metrics(self, logits, labels, mask=None):
        valid = losses.valid_label_mask(labels, self.classes)
        if mask is not None:
            valid = valid & losses.broadcast_mask(mask, labels.shape)
        loss = losses.softmax_cross_entropy(logits, labels)
        return loss, valid

    def train_step(self, state: SegState, batch, ctx: StepContext):
        def loss_fn(params):
            logits = self.model.apply({"params": params}, batch["image"])
            loss, valid = self._metrics(logits, batch["label"])
            return losses.masked_mean(loss, valid), (logits, loss, valid)

        (_, (logits, loss, valid)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = self.opt.tx.update(ctx.pmean(grads), state.opt_state, state.params)
        correct = losses.accuracy(logits, batch["label"])
        return SegState(optax.apply_updates(state.params, updates), opt_state), {
            "loss": average(loss, valid),
            "pixel_accuracy": average(correct, valid),
        }

    def eval_step(self, state: SegState, batch, carry, ctx: StepContext):
        logits = self.model.apply({"params": state.params}, batch["image"])
        loss, valid = self._metrics(logits, batch["label"], batch["mask"])
        return carry, {
            "loss": average(loss, valid),
            "iou": ConfusionMatrix.from_predictions(
                jnp.argmax(logits, -1), batch["label"], self.classes, valid
            ),
            "ignored": IgnoredFraction.from_model_output(label=batch["label"], mask=batch["mask"]),
        }


register_task("test_segmentation", Segmentation)


# --- 4. two views, in-batch negatives over the global batch -------------------------------


@flax.struct.dataclass
class ContrastiveState:
    params: Any
    opt_state: Any


def nt_xent(z1: jax.Array, z2: jax.Array, temperature: float = 0.5) -> jax.Array:
    """Per-anchor NT-Xent (SimCLR) over 2N normalized embeddings: each view's positive is the
    other view of its example; the other 2N - 2 are the negatives."""
    z = jnp.concatenate([z1, z2])
    z = z / jnp.linalg.norm(z, axis=-1, keepdims=True)
    sim = z @ z.T / temperature
    n = z1.shape[0]
    sim = jnp.where(jnp.eye(2 * n, dtype=bool), -jnp.inf, sim)
    positive = jnp.concatenate([jnp.arange(n, 2 * n), jnp.arange(n)])
    return -jax.nn.log_softmax(sim)[jnp.arange(2 * n), positive]


class Contrastive(Task):
    name = "test_contrastive"
    train_metric_names = ("loss",)
    eval_metric_names = ("loss",)

    def __init__(self, setup: TaskSetup) -> None:
        self.model = MLP((32, 16))
        self.opt = setup.optimizer()

    def embed(self, params, images):
        return self.model.apply({"params": params}, images.reshape(images.shape[0], -1))

    def init_state(self, batch, ctx: StepContext) -> ContrastiveState:
        params = self.model.init(ctx.rng("params"), batch["views"][:1, 0].reshape(1, -1))
        return ContrastiveState(params["params"], self.opt.tx.init(params["params"]))

    def train_step(self, state: ContrastiveState, batch, ctx: StepContext):
        def loss_fn(params):
            views = batch["views"]
            z1 = ctx.all_gather(self.embed(params, views[:, 0]))
            z2 = ctx.all_gather(self.embed(params, views[:, 1]))
            per_anchor = nt_xent(z1, z2)  # the global batch's loss, on every device
            return jnp.mean(per_anchor), per_anchor

        (_, per_anchor), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = self.opt.tx.update(ctx.pmean(grads), state.opt_state, state.params)
        new = ContrastiveState(optax.apply_updates(state.params, updates), opt_state)
        return new, {"loss": average(per_anchor)}

    def eval_step(self, state: ContrastiveState, batch, carry, ctx: StepContext):
        z = self.embed(state.params, batch["image"])
        return carry, {"loss": average(jnp.sum(z * z, -1), batch["mask"])}


register_task("test_contrastive", Contrastive)
