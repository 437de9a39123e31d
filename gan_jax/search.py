"""Sweeps that search: successive halving and population-based training.

A sweep group trains as one vmapped program whose members' optimizer settings live in
the state (`sweep_spec.STATE_HYPERPARAMETERS`). A search decides, every
`every_epochs` epochs (a rung), from each live member's score at that step (the score
the sweep ranks by, lower being better, from the evaluator's fixed key):

- halving (Li et al. 2018, successive halving): the best `1 / eta` of the members go on
  and the others stop, so the next rung's program is smaller and costs less;
- pbt (Jaderberg et al. 2017, truncation selection): the worst `fraction` of the
  members each become a copy of one of the best `fraction` (every array of its state:
  parameters, optimizer states, G's average, BatchNorm and spectral-norm statistics,
  the step and so its place in the data stream) with each perturbed setting multiplied
  by a factor drawn from `factors`. A copy keeps its own random key: copies of one
  member draw different noise and batches from then on.

A rung's decision is a pure function of its scores, the rung and the search's seed, so
a resumed search decides exactly as the unbroken one did.
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.config import Config, OptimizerConfig
from gan_jax.errors import ConfigError
from gan_jax.state import GAN, GANState
from gan_jax.sweep_spec import STATE_HYPERPARAMETERS

SEARCHES = ("grid", "halving", "pbt")
# The in-state settings each optimizer holds (`gan_jax.optim.create_optimizer`).
HELD_SETTINGS = {
    "adam": ("learning_rate", "b1", "b2", "eps"),
    "rmsprop": ("learning_rate", "decay", "eps"),
}
# Settings that must stay below 1 (decay rates); the others need only stay positive.
_BELOW_ONE = ("b1", "b2", "decay")
_LARGEST_DECAY = 0.9999
NETWORKS = {"g": "generator", "d": "discriminator"}


@dataclasses.dataclass(frozen=True)
class Search:
    """How a sweep group searches.

    Attributes:
      kind: 'halving' or 'pbt'.
      every_epochs: epochs between rungs.
      halving_eta: halving keeps the best 1/eta of the members at each rung.
      pbt_fraction: the share of members that PBT replaces at each rung (and the share,
        at the top, that it copies from).
      pbt_factors: the multipliers a copied member's settings are perturbed by.
      pbt_settings: the settings PBT perturbs: an in-state optimizer setting of G
        (`g_learning_rate`), of D (`d_b1`), or of both by one factor (`learning_rate`).
      seed: seeds PBT's draws (which source, which factor), with the rung.
    """

    kind: str
    every_epochs: int
    halving_eta: int = 2
    pbt_fraction: float = 0.25
    pbt_factors: tuple[float, ...] = (0.8, 1.25)
    pbt_settings: tuple[str, ...] = ("learning_rate",)
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class Copy:
    """One PBT exploit: `target` becomes a copy of `source` (program slots), its settings
    multiplied by `factors` (setting name as in `Search.pbt_settings` -> factor)."""

    target: int
    source: int
    factors: Mapping[str, float]


def check(search: Search, configs: Sequence[Config], num_epochs: int) -> None:
    """One-line errors for a search that cannot run on these members."""
    if search.kind not in SEARCHES[1:]:
        raise ConfigError(f"--search must be one of {', '.join(SEARCHES)}, got {search.kind!r}")
    if search.every_epochs <= 0:
        raise ConfigError(f"--search_every_epochs must be positive, got {search.every_epochs}")
    if search.every_epochs >= num_epochs:
        raise ConfigError(
            f"--search_every_epochs={search.every_epochs} leaves no rung before the last of "
            f"--num_epochs={num_epochs} epochs"
        )
    if search.kind == "halving" and search.halving_eta < 2:
        raise ConfigError(f"--halving_eta must be at least 2, got {search.halving_eta}")
    if search.kind == "pbt":
        replaced = int(len(configs) * search.pbt_fraction)
        if not 0 < search.pbt_fraction <= 0.5 or replaced < 1:
            raise ConfigError(
                f"--pbt_fraction={search.pbt_fraction} of {len(configs)} members replaces "
                "none at a rung: it must be in (0, 0.5] and leave at least one"
            )
        if not search.pbt_factors or any(f <= 0 for f in search.pbt_factors):
            raise ConfigError(f"--pbt_factors must be positive numbers, got {search.pbt_factors}")
        for name in search.pbt_settings:
            perturbed_settings(name, configs[0])


def perturbed_settings(name: str, config: Config) -> list[tuple[str, str]]:
    """The (network, setting) pairs that `name` of `Search.pbt_settings` perturbs."""
    prefix, _, setting = name.partition("_")
    networks = [prefix] if prefix in NETWORKS else ["g", "d"]
    setting = setting if prefix in NETWORKS else name
    if setting not in STATE_HYPERPARAMETERS:
        raise ConfigError(
            f"--pbt_settings: {name!r} is not an optimizer setting the state holds "
            f"({', '.join(STATE_HYPERPARAMETERS)}, each alone or with g_ or d_)"
        )
    for network in networks:
        optimizer = _optimizer(config, network)
        if setting not in HELD_SETTINGS[optimizer.name]:
            raise ConfigError(
                f"--pbt_settings: {NETWORKS[network]}'s {optimizer.name} has no {setting!r} "
                f"(it holds {', '.join(HELD_SETTINGS[optimizer.name])})"
            )
    return [(network, setting) for network in networks]


def _optimizer(config: Config, network: str) -> OptimizerConfig:
    return config.g_optimizer if network == "g" else config.d_optimizer


def ranking(scores: Sequence[float]) -> list[int]:
    """Slots from best (lowest score) to worst; non-finite scores last, ties by slot."""
    keyed = [(not np.isfinite(s), s if np.isfinite(s) else 0.0, i) for i, s in enumerate(scores)]
    return [i for *_, i in sorted(keyed)]


def halving_survivors(scores: Sequence[float], eta: int) -> list[int]:
    """The slots that go on: the best `len(scores) // eta` (at least one), in slot order."""
    keep = max(1, len(scores) // eta)
    return sorted(ranking(scores)[:keep])


def pbt_copies(search: Search, scores: Sequence[float], rung: int) -> list[Copy]:
    """Rung `rung`'s exploits: each of the worst `pbt_fraction` takes a copy of one of the
    best `pbt_fraction`, drawn at random, with a factor drawn for each perturbed setting."""
    order = ranking(scores)
    count = int(len(scores) * search.pbt_fraction)
    top, bottom = order[:count], sorted(order[len(order) - count :])
    rng = np.random.default_rng([search.seed, rung])
    return [
        Copy(
            target,
            int(rng.choice(top)),
            {name: float(rng.choice(search.pbt_factors)) for name in search.pbt_settings},
        )
        for target in bottom
    ]


def settings_of(state: GANState) -> dict[str, list[float]]:
    """Each in-state optimizer setting of a group's state, by name (`g_learning_rate`,
    in `config_settings`' order), one value per member, as written to records (a
    float32's shortest decimal: 0.9, not 0.8999999761581421)."""
    held = {}
    for prefix, network in NETWORKS.items():
        hyperparams = getattr(getattr(state, network).opt_state, "hyperparams", {})
        for name in STATE_HYPERPARAMETERS:
            if name in hyperparams:
                values = np.asarray(hyperparams[name], np.float32)
                held[f"{prefix}_{name}"] = [float(str(v)) for v in values]
    return held


def exploit(state: GANState, copies: Sequence[Copy], config: Config) -> GANState:
    """The group's state after `copies`: each target's arrays gathered from its source
    (on the member axis, on the device) but its key, then its settings perturbed."""
    num_members = len(np.asarray(state.step))
    sources = np.arange(num_members)
    multipliers: dict[tuple[str, str], np.ndarray] = {}
    for copy in copies:
        sources[copy.target] = copy.source
        for name, factor in copy.factors.items():
            for pair in perturbed_settings(name, config):
                multipliers.setdefault(pair, np.ones(num_members, np.float32))
                multipliers[pair][copy.target] *= factor
    return _exploit(state, jnp.asarray(sources), multipliers)


@jax.jit
def _exploit(
    state: GANState, sources: jax.Array, multipliers: Mapping[tuple[str, str], jax.Array]
) -> GANState:
    copied = jax.tree.map(lambda leaf: leaf[sources], state).replace(key=state.key)
    for (prefix, setting), factor in multipliers.items():
        network = getattr(copied, NETWORKS[prefix])
        hyperparams = dict(network.opt_state.hyperparams)
        value = hyperparams[setting] * factor.astype(hyperparams[setting].dtype)
        if setting in _BELOW_ONE:
            value = jnp.minimum(value, _LARGEST_DECAY)
        hyperparams[setting] = value
        network = network.replace(opt_state=network.opt_state._replace(hyperparams=hyperparams))
        copied = copied.replace(**{NETWORKS[prefix]: network})
    return copied


@dataclasses.dataclass(frozen=True)
class Searching:
    """A search as the trainer runs it: its settings and the score its rungs rank by.

    Attributes:
      search: the settings.
      score_name: the score's name ('fid', 'w2', ...; lower is better).
      score: a member's score from its sampling state (`state.for_sampling`), computed
        from a fixed key, so a rung's decision is a pure function of the states.
    """

    search: Search
    score_name: str
    score: Callable[[GAN, GANState], float]


def config_settings(config: Config) -> dict[str, float]:
    """The in-state optimizer settings a config starts a member with, named as
    `settings_of` names them."""
    return {
        f"{prefix}_{name}": float(getattr(_optimizer(config, prefix), name))
        for prefix in NETWORKS
        for name in STATE_HYPERPARAMETERS
        if name in HELD_SETTINGS[_optimizer(config, prefix).name]
    }
