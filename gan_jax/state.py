"""The GAN's static parts (networks, optimizers, config) and its training state pytree.

`GAN` holds what never changes during a run and is closed over by the jitted
steps; `GANState` holds every array that does: both networks' parameters,
BatchNorm statistics and optimizer states, the step counter and the root PRNG key.
Being one pytree of arrays, the state is what Orbax checkpoints, jit donates and
sweeps vmap over.
"""

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from gan_jax import models
from gan_jax.config import Config
from gan_jax.optim import create_optimizer


class NetworkState(flax.struct.PyTreeNode):
    """One network's variables and optimizer state."""

    params: Any
    batch_stats: Any  # {} for networks without BatchNorm
    opt_state: optax.OptState


class GANState(flax.struct.PyTreeNode):
    """Everything that a training step changes."""

    step: jax.Array  # int32 scalar: training steps taken
    key: jax.Array  # typed PRNG key; every random draw of training derives from it
    generator: NetworkState
    discriminator: NetworkState
    # G's parameters averaged over training (`Config.g_ema_decay`); None when off, which
    # keeps the tree (and so checkpoints without an average) as they were.
    generator_ema: Any = None


@dataclasses.dataclass(frozen=True)
class GAN:
    """The static half of a GAN: modules, optimizers and the config they came from."""

    config: Config
    generator: nn.Module
    discriminator: nn.Module
    g_optimizer: optax.GradientTransformation
    d_optimizer: optax.GradientTransformation
    # How a data-parallel run splits each batch over its devices (`gan_jax.parallel`);
    # None on one device.
    batch_sharding: jax.sharding.Sharding | None = None

    @property
    def jitted_generate(self) -> Callable[..., jax.Array]:
        """`generate(self, state, z, labels)` jitted once per generator architecture, so
        repeated sampling (grids each epoch, scores each evaluation, every member of a
        sweep) reuses its compilations."""
        return _jitted_generate(self.generator)


def build_gan(config: Config) -> GAN:
    """Builds the networks and optimizers that `config` describes."""
    return GAN(
        config=config,
        generator=models.build(
            config.generator.name, config.generator.kwargs, config.compute_dtype
        ),
        discriminator=models.build(
            config.discriminator.name, config.discriminator.kwargs, config.compute_dtype
        ),
        g_optimizer=create_optimizer(config.g_optimizer),
        d_optimizer=create_optimizer(config.d_optimizer),
    )


def sample_latents(key: jax.Array, num: int, config: Config) -> jax.Array:
    """Draws generator inputs z of shape (num, latent_dim)."""
    shape = (num, config.latent_dim)
    if config.latent_distribution == "normal":
        return jax.random.normal(key, shape)
    if config.latent_distribution == "uniform":
        return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
    raise ValueError(f"unknown latent distribution {config.latent_distribution!r}")


def sample_labels(key: jax.Array, num: int, config: Config) -> jax.Array | None:
    """Uniform random class labels for a conditional GAN, None for an unconditional one."""
    if not config.num_classes:
        return None
    return jax.random.randint(key, (num,), 0, config.num_classes)


def variables(params: Any, batch_stats: Any) -> dict[str, Any]:
    """A Flax variables dict; networks without BatchNorm get no 'batch_stats' entry."""
    return {"params": params, "batch_stats": batch_stats} if batch_stats else {"params": params}


def _split_variables(variables: Any) -> tuple[Any, Any]:
    return variables["params"], variables.get("batch_stats", {})


def create_state(gan: GAN, seed: int) -> GANState:
    """Initialises both networks and optimizers from `seed`.

    The same seed gives bit-identical parameters. The root key stored in the state
    is split off the seed's key, so it never reuses an initialisation key.
    """
    (state,) = create_states([gan], [seed])
    return state


def create_states(gans: Sequence[GAN], seeds: Sequence[int]) -> list[GANState]:
    """`create_state(gans[i], seeds[i])` for each i, the networks of all at once.

    A sweep group's members share their networks and differ in seeds and optimizer
    settings: one vmapped initialisation draws every member's parameters (each op runs
    once for the group, not once per member; the values are those of the member alone),
    then each member's optimizers start with its own settings.

    Raises:
      ValueError: if the GANs' networks differ.
    """
    gan = gans[0]
    if any((g.generator, g.discriminator) != (gan.generator, gan.discriminator) for g in gans):
        raise ValueError("create_states needs GANs with the same networks")
    config = gan.config
    z = jax.ShapeDtypeStruct((1, config.latent_dim), jnp.float32)
    labels = jax.ShapeDtypeStruct((1,), jnp.int32) if config.num_classes else None
    example = jax.ShapeDtypeStruct((1, *example_shape(gan)), jnp.float32)
    seed_keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    networks = _init_networks(gan.generator, gan.discriminator, z, labels, example, seed_keys)
    states = []
    for i, member in enumerate(gans):
        g_variables, d_variables, root_key = member_state(networks, i)
        g_params, g_stats = _split_variables(g_variables)
        d_params, d_stats = _split_variables(d_variables)
        states.append(
            GANState(
                step=jnp.zeros((), jnp.int32),
                key=root_key,
                generator=NetworkState(g_params, g_stats, member.g_optimizer.init(g_params)),
                discriminator=NetworkState(d_params, d_stats, member.d_optimizer.init(d_params)),
                # The average starts at G's initial parameters (a copy: jit donates state
                # buffers).
                generator_ema=jax.tree.map(jnp.copy, g_params)
                if member.config.g_ema_decay
                else None,
            )
        )
    return states


# One program for every parameter of both networks, for the whole group, compiled once
# per architecture: run eagerly, each initializer of each layer shape was a compilation
# of its own (2-5 s of a small run's start-up, 0.5-1 s with a warm compilation cache).
# Every experiment's networks get the bits the eager run gave (`models.initializers`
# keeps XLA from fusing across a draw); with spectral normalisation, some kernels of the
# second and later members of a group move by a float32 rounding, as they already did
# between a group and a solo run.
@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _init_networks(
    generator: nn.Module,
    discriminator: nn.Module,
    z: jax.ShapeDtypeStruct,
    labels: jax.ShapeDtypeStruct | None,
    example: jax.ShapeDtypeStruct,
    seed_keys: jax.Array,
) -> tuple[Any, Any, jax.Array]:
    def init_networks(seed_key: jax.Array) -> tuple[Any, Any, jax.Array]:
        # The third key once drew the example latent; it stays split off so that the root
        # key, and every key of training derived from it, is the one a seed always gave.
        g_init_key, d_init_key, _, root_key = jax.random.split(seed_key, 4)
        # `lazy_init` runs the initializers without the forward passes.
        g_variables = generator.lazy_init(g_init_key, z, labels, train=False)
        d_variables = discriminator.lazy_init(d_init_key, example, labels, train=False)
        return g_variables, d_variables, root_key

    return jax.vmap(init_networks)(seed_keys)


# Both jitted: one dispatch (and, per state structure, one compilation) rather than one
# per leaf; slicing the members of a 64-member sweep one leaf at a time cost seconds.
@jax.jit
def stack_states(states: list[GANState]) -> GANState:
    """Member states of a sweep group as one state with a leading member axis."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)


@jax.jit
def member_state(states: GANState, index: int | jax.Array) -> GANState:
    """Member `index` of a stacked state, as an ordinary (unstacked) state."""
    return jax.tree.map(lambda leaf: leaf[index], states)


def example_shape(gan: GAN) -> tuple[int, ...]:
    """The shape of one generated example, read off the generator without running it."""
    config = gan.config
    z = jax.ShapeDtypeStruct((1, config.latent_dim), jnp.float32)
    labels = jax.ShapeDtypeStruct((1,), jnp.int32) if config.num_classes else None
    variables = jax.eval_shape(
        lambda z, y: gan.generator.init(jax.random.key(0), z, y, train=False), z, labels
    )
    out = jax.eval_shape(
        lambda v, z, y: gan.generator.apply(v, z, y, train=False), variables, z, labels
    )
    return tuple(out.shape[1:])


def for_sampling(state: GANState, *, raw_generator: bool = False) -> GANState:
    """The state whose G samples are shown and scored: G's moving average when the run
    keeps one (and `raw_generator` is False), else the trained G itself.

    The average takes G's current BatchNorm statistics, which track the same layers.
    """
    if raw_generator or state.generator_ema is None:
        return state
    return state.replace(generator=state.generator.replace(params=state.generator_ema))


def generate(gan: GAN, state: GANState, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """G's output for latents z in inference mode (BatchNorm running averages, no dropout)."""
    return _generate_with(gan.generator, state, z, labels)


def _generate_with(
    generator: nn.Module, state: GANState, z: jax.Array, labels: jax.Array | None
) -> jax.Array:
    g = state.generator
    return generator.apply(variables(g.params, g.batch_stats), z, labels, train=False).astype(
        jnp.float32
    )


@functools.cache
def _jitted_generate(generator: nn.Module) -> Callable[..., jax.Array]:
    # Keyed by the module, which compares by its settings: equal configs share one jit.
    return jax.jit(functools.partial(_generate_with, generator))
