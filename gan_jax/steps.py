"""Pure, jittable training steps: D's updates, G's update, and one training step of both.

Update order (all five documents agree): D first, then G through the *updated* D.
Per `Config.d_update`, D takes one optimizer step on real + fake ('joint', D2L,
Udacity, the lecture's PyTorch code) or one on the real batch and then one on a
fake batch ('separate', Keras' two `train_on_batch` calls and "Make Your Own GAN").
Per `Config.d_steps_per_g_step` (WGAN's n_critic), a training step makes that many
D updates, each on its own real batch, before G's one. Per `Config.g_noise`, G's
step reuses D's latents ('shared', D2L and Udacity) or draws fresh ones ('fresh').
Networks run in training mode in every step, so BatchNorm statistics of whichever
network runs are updated, as in PyTorch.

Every loss and D diagnostic comes from the run's objective (`gan_jax.losses`); the
steps only run the networks and apply the gradients.

After G's update, G's exponential moving average (`Config.g_ema_decay`, if kept) moves
towards G's new parameters.

Randomness: every draw of step s comes from `fold_in(stream(root, STEPS), s)` (the
data order has its own stream, see `gan_jax.loop`), so any step can be recomputed
from the checkpointed root key and step alone.
"""

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from gan_jax import losses
from gan_jax.parallel import split_batch
from gan_jax.state import (
    GAN,
    GANState,
    NetworkState,
    sample_labels,
    sample_latents,
    variables,
)

Metrics = dict[str, jax.Array]

_STEPS_STREAM = 0  # gan_jax.loop draws the data order from stream 1
_STEP_KEY_NAMES = (
    "d_latents",
    "d_labels",
    "d_generator_dropout",
    "d_real_dropout",
    "d_fake_dropout",
    "g_latents",
    "g_labels",
    "g_generator_dropout",
    "g_discriminator_dropout",
)
# Keys added after the first nine are folded in rather than split off, so that the
# split above, and with it every earlier run's draws, stays as it was.
_ADDED_KEY_NAMES = ("d_penalty", "d_penalty_dropout")


def step_keys(root_key: jax.Array, step: jax.Array) -> dict[str, jax.Array]:
    """The named PRNG keys of one training step."""
    key = jax.random.fold_in(jax.random.fold_in(root_key, _STEPS_STREAM), step)
    keys = dict(zip(_STEP_KEY_NAMES, jax.random.split(key, len(_STEP_KEY_NAMES)), strict=True))
    for i, name in enumerate(_ADDED_KEY_NAMES, start=len(_STEP_KEY_NAMES)):
        keys[name] = jax.random.fold_in(key, i)
    return keys


def d_update_keys(keys: dict[str, jax.Array], index: int) -> dict[str, jax.Array]:
    """The keys of a step's D update `index`: the step's own for the first, then D's folded.

    The first D update draws exactly what a step with one D update always drew.
    """
    if index == 0:
        return keys
    return {
        name: jax.random.fold_in(key, index) if name.startswith("d_") else key
        for name, key in keys.items()
    }


def _apply(
    module: Any, params: Any, batch_stats: Any, x: jax.Array, labels: Any, dropout_key: jax.Array
) -> tuple[jax.Array, Any]:
    """Runs a network in training mode; returns its output and updated BatchNorm stats."""
    out, mutated = module.apply(
        variables(params, batch_stats),
        x,
        labels,
        train=True,
        rngs={"dropout": dropout_key},
        mutable=["batch_stats"],
    )
    return out, mutated.get("batch_stats", batch_stats)


def _per_example(loss: jax.Array, gan: GAN) -> jax.Array:
    # Summed losses are reported per example, as D2L reports them.
    return loss / gan.config.batch_size if gan.config.loss.reduction == "sum" else loss


def _apply_gradients(
    optimizer: optax.GradientTransformation, network: NetworkState, grads: Any, batch_stats: Any
) -> NetworkState:
    updates, opt_state = optimizer.update(grads, network.opt_state, network.params)
    return NetworkState(optax.apply_updates(network.params, updates), batch_stats, opt_state)


def _update_discriminator(
    objective: losses.Objective,
    optimizer: optax.GradientTransformation,
    network: NetworkState,
    grads: Any,
    batch_stats: Any,
) -> NetworkState:
    network = _apply_gradients(optimizer, network, grads, batch_stats)
    return network.replace(params=objective.constrain_discriminator(network.params))


def discriminator_step(
    gan: GAN,
    state: GANState,
    real: jax.Array,
    real_labels: jax.Array | None,
    keys: dict[str, jax.Array],
) -> tuple[GANState, Metrics]:
    """One D update (or two, for `d_update='separate'`) on a real batch and a fake batch.

    `real_labels` go into D only for a conditional GAN (`Config.num_classes`); the
    objective gets them in any case.
    """
    config = gan.config
    objective = losses.from_config(config.loss)
    batch = real.shape[0]
    z = split_batch(sample_latents(keys["d_latents"], batch, config), gan.batch_sharding)
    fake_labels = split_batch(sample_labels(keys["d_labels"], batch, config), gan.batch_sharding)
    g = state.generator
    fake, g_stats = _apply(
        gan.generator, g.params, g.batch_stats, z, fake_labels, keys["d_generator_dropout"]
    )
    fake = jax.lax.stop_gradient(fake)
    d = state.discriminator
    # D takes class labels as an input only in a conditional GAN; the objective may read
    # the real labels either way (the semi-supervised GAN's supervised loss).
    d_labels = real_labels if config.num_classes else None

    def outputs(params, stats, x, labels, key):
        out, stats = _apply(gan.discriminator, params, stats, x, labels, key)
        return out.astype(jnp.float32), stats

    if config.d_update == "joint":

        def loss_fn(params):
            real_out, stats = outputs(params, d.batch_stats, real, d_labels, keys["d_real_dropout"])
            fake_out, stats = outputs(params, stats, fake, fake_labels, keys["d_fake_dropout"])
            loss, terms = objective.discriminator_loss(real_out, fake_out, real_labels)

            def discriminate(x, labels):
                # The penalty's own D pass leaves the BatchNorm statistics alone.
                return outputs(params, stats, x, labels, keys["d_penalty_dropout"])[0]

            penalty = objective.penalty(discriminate, real, fake, d_labels, keys["d_penalty"])
            penalty_metrics = {}
            if penalty is not None:
                penalty_loss, penalty_metrics = penalty
                loss = loss + penalty_loss
            return loss, (stats, real_out, fake_out, terms, penalty_metrics)

        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
        stats, real_out, fake_out, terms, penalty_metrics = aux
        d = _update_discriminator(objective, gan.d_optimizer, d, grads, stats)
        grad_norm = optax.tree.norm(grads)
    elif config.d_update == "separate":
        if type(objective).penalty is not losses.Objective.penalty:
            raise ValueError("an objective with a penalty needs d_update='joint'")
        if objective.uses_real_labels:
            raise ValueError("an objective that reads the real labels needs d_update='joint'")

        def update_on(d, examples, labels, dropout_key, side_loss):
            """One D update on one side (real or fake) alone, as Keras' train_on_batch."""

            def loss_fn(params):
                out, stats = outputs(params, d.batch_stats, examples, labels, dropout_key)
                return side_loss(out), (stats, out)

            (loss, (stats, out)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
            d = _update_discriminator(objective, gan.d_optimizer, d, grads, stats)
            return d, loss, out, optax.tree.norm(grads)

        d, real_loss, real_out, real_norm = update_on(
            d, real, d_labels, keys["d_real_dropout"], objective.real_loss
        )
        d, fake_loss, fake_out, fake_norm = update_on(
            d, fake, fake_labels, keys["d_fake_dropout"], objective.fake_loss
        )
        # Keras reports the mean of the two train_on_batch losses.
        loss = (real_loss + fake_loss) / 2
        terms = {"loss_d_real": real_loss, "loss_d_fake": fake_loss}
        penalty_metrics = {}
        grad_norm = (real_norm + fake_norm) / 2
    else:
        raise ValueError(f"unknown d_update {config.d_update!r}")

    metrics = {
        "loss_d": _per_example(loss, gan),
        **{name: _per_example(term, gan) for name, term in terms.items()},
        **objective.diagnostics(real_out, fake_out, real_labels),
        **penalty_metrics,
        "d_grad_norm": grad_norm,
    }
    new_state = state.replace(
        generator=state.generator.replace(batch_stats=g_stats), discriminator=d
    )
    return new_state, metrics


def generator_step(
    gan: GAN,
    state: GANState,
    keys: dict[str, jax.Array],
    latents: jax.Array,
    labels: jax.Array | None,
) -> tuple[GANState, Metrics]:
    """One G update through the current D on latents `latents` (and class `labels`)."""
    objective = losses.from_config(gan.config.loss)
    g, d = state.generator, state.discriminator

    def loss_fn(params):
        fake, g_stats = _apply(
            gan.generator, params, g.batch_stats, latents, labels, keys["g_generator_dropout"]
        )
        fake_out, d_stats = _apply(
            gan.discriminator,
            d.params,
            d.batch_stats,
            fake,
            labels,
            keys["g_discriminator_dropout"],
        )
        loss = objective.generator_loss(fake_out.astype(jnp.float32))
        return loss, (g_stats, d_stats)

    (loss, (g_stats, d_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(g.params)
    new_state = state.replace(
        generator=_apply_gradients(gan.g_optimizer, g, grads, g_stats),
        discriminator=d.replace(batch_stats=d_stats),
    )
    return new_state, {"loss_g": _per_example(loss, gan), "g_grad_norm": optax.tree.norm(grads)}


def _real_batches(
    real: jax.Array | Sequence[jax.Array],
    real_labels: jax.Array | Sequence[jax.Array] | None,
    num_d_updates: int,
) -> tuple[tuple[jax.Array, ...], tuple[jax.Array | None, ...]]:
    """`train_step`'s real batches and labels as one tuple entry per D update."""
    if not isinstance(real, list | tuple):
        real, real_labels = (real,), (real_labels,)
    elif real_labels is None:
        real_labels = (None,) * len(real)
    if len(real) != num_d_updates:
        raise ValueError(
            f"d_steps_per_g_step={num_d_updates} needs {num_d_updates} real batches, "
            f"got {len(real)}"
        )
    return tuple(real), tuple(real_labels)


def _mean_metrics(metrics: list[Metrics]) -> Metrics:
    if len(metrics) == 1:
        return metrics[0]
    return {name: jnp.mean(jnp.stack([m[name] for m in metrics])) for name in metrics[0]}


def train_step(
    gan: GAN,
    state: GANState,
    real: jax.Array | Sequence[jax.Array],
    real_labels: jax.Array | Sequence[jax.Array] | None,
) -> tuple[GANState, Metrics]:
    """One training step: `d_steps_per_g_step` D updates, then G's update.

    Args:
      gan: the networks, optimizers and config.
      state: the state before the step; its `step` advances by one.
      real: the real examples, already scaled: one batch per D update, as a
        sequence of `d_steps_per_g_step` arrays, or one array when that is 1.
      real_labels: their class labels in the same form (a conditional GAN's, or those
        an objective with `uses_real_labels` reads), or None.

    Returns:
      The new state, and the step's metrics; D's are means over its D updates.
      With 'shared' G noise, G reuses the latents of the step's first D update.
    """
    config = gan.config
    if config.d_steps_per_g_step < 1:
        raise ValueError(f"d_steps_per_g_step must be >= 1, got {config.d_steps_per_g_step}")
    reals, reals_labels = _real_batches(real, real_labels, config.d_steps_per_g_step)
    keys = step_keys(state.key, state.step)
    d_metrics = []
    # Unrolled rather than looped: a handful of updates, and XLA:CPU runs convolutions
    # far slower inside loops (see gan_jax.loop.default_loop).
    for index, (x, y) in enumerate(zip(reals, reals_labels, strict=True)):
        state, metrics = discriminator_step(gan, state, x, y, d_update_keys(keys, index))
        d_metrics.append(metrics)
    batch = reals[0].shape[0]
    if config.g_noise == "shared":
        latents = sample_latents(keys["d_latents"], batch, config)
        labels = sample_labels(keys["d_labels"], batch, config)
    else:
        latents = sample_latents(keys["g_latents"], batch, config)
        labels = sample_labels(keys["g_labels"], batch, config)
    latents = split_batch(latents, gan.batch_sharding)
    labels = split_batch(labels, gan.batch_sharding)
    state, g_metrics = generator_step(gan, state, keys, latents, labels)
    state = update_generator_average(state, config.g_ema_decay)
    return state.replace(step=state.step + 1), {**_mean_metrics(d_metrics), **g_metrics}


def update_generator_average(state: GANState, decay: float) -> GANState:
    """Moves G's moving average towards G's parameters: ema <- decay * ema + (1 - decay) * G.

    A no-op for a run without an average (`state.generator_ema` is None).
    """
    if state.generator_ema is None:
        return state
    average = optax.incremental_update(state.generator.params, state.generator_ema, 1.0 - decay)
    return state.replace(generator_ema=average)
