"""Pure, jittable training steps: D's update, G's update, and many steps per dispatch.

Update order (all five documents agree): D first, then G through the *updated* D.
Per `Config.d_update`, D takes one optimizer step on real + fake ('joint', D2L,
Udacity, the lecture's PyTorch code) or one on the real batch and then one on a
fake batch ('separate', Keras' two `train_on_batch` calls and "Make Your Own GAN").
Per `Config.g_noise`, G's step reuses D's latents ('shared', D2L and Udacity) or
draws fresh ones ('fresh'). Networks run in training mode in every step, so
BatchNorm statistics of whichever network runs are updated, as in PyTorch.

Randomness: every draw of step s comes from `fold_in(stream(root, STEPS), s)`, and
the data order of epoch e from `fold_in(stream(root, DATA), e)`, so any step can
be recomputed from the checkpointed root key and step alone.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from gan_jax import losses
from gan_jax.data.pipeline import TrainingData, epoch_order, scale
from gan_jax.state import (
    GAN,
    GANState,
    NetworkState,
    sample_labels,
    sample_latents,
    variables,
)

Metrics = dict[str, jax.Array]

_STEPS_STREAM = 0
_DATA_STREAM = 1
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


def step_keys(root_key: jax.Array, step: jax.Array) -> dict[str, jax.Array]:
    """The named PRNG keys of one training step."""
    key = jax.random.fold_in(jax.random.fold_in(root_key, _STEPS_STREAM), step)
    return dict(zip(_STEP_KEY_NAMES, jax.random.split(key, len(_STEP_KEY_NAMES)), strict=True))


def data_key(root_key: jax.Array) -> jax.Array:
    """The key that the data order derives from."""
    return jax.random.fold_in(root_key, _DATA_STREAM)


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


def discriminator_step(
    gan: GAN,
    state: GANState,
    real: jax.Array,
    real_labels: jax.Array | None,
    keys: dict[str, jax.Array],
) -> tuple[GANState, Metrics]:
    """One D update (or two, for `d_update='separate'`) on a real batch and a fake batch."""
    config, loss_config = gan.config, gan.config.loss
    batch = real.shape[0]
    z = sample_latents(keys["d_latents"], batch, config)
    fake_labels = sample_labels(keys["d_labels"], batch, config)
    g = state.generator
    fake, g_stats = _apply(
        gan.generator, g.params, g.batch_stats, z, fake_labels, keys["d_generator_dropout"]
    )
    fake = jax.lax.stop_gradient(fake)
    d = state.discriminator

    def logits(params, stats, x, labels, key):
        out, stats = _apply(gan.discriminator, params, stats, x, labels, key)
        return out.astype(jnp.float32), stats

    if config.d_update == "joint":

        def loss_fn(params):
            real_logits, stats = logits(
                params, d.batch_stats, real, real_labels, keys["d_real_dropout"]
            )
            fake_logits, stats = logits(params, stats, fake, fake_labels, keys["d_fake_dropout"])
            loss, (real_loss, fake_loss) = losses.discriminator_loss(
                real_logits,
                fake_logits,
                label_smoothing=loss_config.label_smoothing,
                reduction=loss_config.reduction,
                weight=loss_config.d_loss_weight,
            )
            return loss, (stats, real_logits, fake_logits, real_loss, fake_loss)

        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
        stats, real_logits, fake_logits, real_loss, fake_loss = aux
        d = _apply_gradients(gan.d_optimizer, d, grads, stats)
        grad_norm = optax.tree.norm(grads)
    elif config.d_update == "separate":

        def real_loss_fn(params):
            real_logits, stats = logits(
                params, d.batch_stats, real, real_labels, keys["d_real_dropout"]
            )
            loss = losses.discriminator_real_loss(
                real_logits,
                label_smoothing=loss_config.label_smoothing,
                reduction=loss_config.reduction,
            )
            return loss, (stats, real_logits)

        (real_loss, (stats, real_logits)), real_grads = jax.value_and_grad(
            real_loss_fn, has_aux=True
        )(d.params)
        d = _apply_gradients(gan.d_optimizer, d, real_grads, stats)

        def fake_loss_fn(params):
            fake_logits, stats = logits(
                params, d.batch_stats, fake, fake_labels, keys["d_fake_dropout"]
            )
            loss = losses.discriminator_fake_loss(fake_logits, reduction=loss_config.reduction)
            return loss, (stats, fake_logits)

        (fake_loss, (stats, fake_logits)), fake_grads = jax.value_and_grad(
            fake_loss_fn, has_aux=True
        )(d.params)
        d = _apply_gradients(gan.d_optimizer, d, fake_grads, stats)
        # Keras reports the mean of the two train_on_batch losses.
        loss = (real_loss + fake_loss) / 2
        grad_norm = (optax.tree.norm(real_grads) + optax.tree.norm(fake_grads)) / 2
    else:
        raise ValueError(f"unknown d_update {config.d_update!r}")

    real_prob = jax.nn.sigmoid(real_logits)
    fake_prob = jax.nn.sigmoid(fake_logits)
    metrics = {
        "loss_d": _per_example(loss, gan),
        "loss_d_real": _per_example(real_loss, gan),
        "loss_d_fake": _per_example(fake_loss, gan),
        "d_real": jnp.mean(real_prob),  # mean D(x) on real data
        "d_fake": jnp.mean(fake_prob),  # mean D(G(z)) before D's update
        "d_accuracy": (jnp.mean(real_logits > 0) + jnp.mean(fake_logits < 0)) / 2,
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
    g, d = state.generator, state.discriminator

    def loss_fn(params):
        fake, g_stats = _apply(
            gan.generator, params, g.batch_stats, latents, labels, keys["g_generator_dropout"]
        )
        fake_logits, d_stats = _apply(
            gan.discriminator,
            d.params,
            d.batch_stats,
            fake,
            labels,
            keys["g_discriminator_dropout"],
        )
        loss = losses.generator_loss(
            fake_logits.astype(jnp.float32),
            kind=gan.config.loss.generator_loss,
            reduction=gan.config.loss.reduction,
        )
        return loss, (g_stats, d_stats)

    (loss, (g_stats, d_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(g.params)
    new_state = state.replace(
        generator=_apply_gradients(gan.g_optimizer, g, grads, g_stats),
        discriminator=d.replace(batch_stats=d_stats),
    )
    return new_state, {"loss_g": _per_example(loss, gan), "g_grad_norm": optax.tree.norm(grads)}


def train_step(
    gan: GAN, state: GANState, real: jax.Array, real_labels: jax.Array | None
) -> tuple[GANState, Metrics]:
    """D's update then G's update on one batch of real examples (already scaled)."""
    keys = step_keys(state.key, state.step)
    state, d_metrics = discriminator_step(gan, state, real, real_labels, keys)
    batch = real.shape[0]
    if gan.config.g_noise == "shared":
        latents = sample_latents(keys["d_latents"], batch, gan.config)
        labels = sample_labels(keys["d_labels"], batch, gan.config)
    else:
        latents = sample_latents(keys["g_latents"], batch, gan.config)
        labels = sample_labels(keys["g_labels"], batch, gan.config)
    state, g_metrics = generator_step(gan, state, keys, latents, labels)
    return state.replace(step=state.step + 1), {**d_metrics, **g_metrics}


def _batch(gan: GAN, data: TrainingData, indices: jax.Array) -> tuple[jax.Array, jax.Array | None]:
    real = scale(jnp.take(data.examples, indices, axis=0), gan.config.data.scaling)
    labels = None if data.labels is None or not gan.config.num_classes else data.labels[indices]
    return real, labels


def uses_convolutions(gan: GAN) -> bool:
    """Whether either network is convolutional (every model but the MLP is)."""
    return any(m.name != "mlp" for m in (gan.config.generator, gan.config.discriminator))


def default_loop(gan: GAN) -> str:
    """'device' (one `fori_loop` per dispatch), except for conv nets on CPU: 'host'.

    XLA:CPU runs convolutions and their gradients about 100 times slower inside a while
    loop than outside one (jax-ml/jax#12868; a DCGAN or camel step takes seconds there
    instead of a fraction of one), so on CPU conv nets are stepped by a host loop of
    jitted steps instead. Steps are still dispatched asynchronously and metrics read
    back once per dispatch; accelerators always use the device loop.
    """
    return "host" if jax.default_backend() == "cpu" and uses_convolutions(gan) else "device"


def make_run_steps(
    gan: GAN,
    num_examples: int,
    steps_per_epoch: int,
    max_steps: int,
    loop: str | None = None,
    should_stop: Callable[[], object] | None = None,
) -> Callable[[GANState, TrainingData, jax.Array], tuple[GANState, Metrics]]:
    """Builds the function that runs up to `max_steps` training steps per call.

    Args:
      gan: the networks and optimizers.
      num_examples: the training set's size.
      steps_per_epoch: steps between data-order reshuffles.
      max_steps: the most steps one call runs.
      loop: 'device' runs the steps in one jitted `fori_loop`; 'host' calls a jitted
        step from Python (see `default_loop`, the default). Both run the same steps on
        the same data: bit-identical for MLPs on CPU, equal to float32 rounding for
        conv nets (XLA:CPU picks other conv algorithms inside a loop).
      should_stop: the host loop asks it before each step and ends the call early
        when it returns something true (a pending SIGTERM, say); the device loop
        always runs its `num_steps`.

    Returns:
      `run(state, data, num_steps) -> (state, metrics)`. `metrics[name][i]` is step
      i's value for i below the steps actually run (`state.step` tells how many;
      entries past them are zero). With the device
      loop `num_steps` (<= max_steps) is traced, so every call reuses one compilation.
      The state argument is donated.
    """
    config = gan.config
    batch_size = config.batch_size
    loop = loop or default_loop(gan)
    if loop not in ("device", "host"):
        raise ValueError(f"loop must be 'device' or 'host', got {loop!r}")

    def order_for(state: GANState, step: jax.Array) -> jax.Array:
        """The data order of the epoch holding `step` (a permutation of the examples)."""
        if config.data.sampling == "sequential":
            return jnp.arange(num_examples)
        return epoch_order(data_key(state.key), step // steps_per_epoch, num_examples)

    def one_step(state: GANState, data: TrainingData, order: jax.Array):
        """One training step at `state.step`; `order` is the current epoch's data order."""
        step = state.step
        if config.data.sampling == "with_replacement":
            key = jax.random.fold_in(data_key(state.key), step)
            indices = jax.random.randint(key, (batch_size,), 0, num_examples)
        else:
            position = step % steps_per_epoch
            # A new permutation only at epoch starts, not every step.
            order = jax.lax.cond(position == 0, lambda: order_for(state, step), lambda: order)
            indices = jax.lax.dynamic_slice_in_dim(order, position * batch_size, batch_size)
        state, metrics = train_step(gan, state, *_batch(gan, data, indices))
        return state, order, metrics

    def empty_history(state: GANState, data: TrainingData) -> Metrics:
        shapes = jax.eval_shape(one_step, state, data, jnp.arange(num_examples))[2]
        return {k: jnp.zeros((max_steps,), v.dtype) for k, v in shapes.items()}

    def run_on_device(state: GANState, data: TrainingData, num_steps: jax.Array):
        def body(i, carry):
            state, order, history = carry
            state, order, metrics = one_step(state, data, order)
            history = {k: history[k].at[i].set(v) for k, v in metrics.items()}
            return state, order, history

        carry = (state, order_for(state, state.step), empty_history(state, data))
        state, _, history = jax.lax.fori_loop(0, num_steps, body, carry)
        return state, history

    if loop == "device":
        return jax.jit(run_on_device, donate_argnums=0)

    jitted_step = jax.jit(one_step, donate_argnums=0)
    start_order = jax.jit(lambda state: order_for(state, state.step))

    @jax.jit
    def stack(history: list[Metrics]) -> Metrics:
        names = history[0].keys()
        padding = max_steps - len(history)
        return {k: jnp.pad(jnp.stack([m[k] for m in history]), (0, padding)) for k in names}

    def run_on_host(state: GANState, data: TrainingData, num_steps: jax.Array):
        num_steps = int(num_steps)
        if not 0 < num_steps <= max_steps:
            raise ValueError(f"num_steps must be in [1, {max_steps}], got {num_steps}")
        order = start_order(state)
        history = []
        for i in range(num_steps):
            if i and should_stop is not None and should_stop():
                break
            state, order, metrics = jitted_step(state, data, order)
            history.append(metrics)
        return state, stack(history)

    return run_on_host
