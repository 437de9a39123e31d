"""Experiment configuration as frozen dataclasses that round-trip through JSON.

The config is the one description of a run: the experiment files build it from
flags, the trainer consumes it, and every checkpoint stores it, so that
`gan_jax.sample` and `gan_jax.evaluate` can rebuild the networks without the
experiment's flags.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A network: a name in `gan_jax.models.MODELS` and its constructor arguments."""

    name: str
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """An optax optimizer; defaults are PyTorch's Adam defaults."""

    name: Literal["adam", "rmsprop"] = "adam"
    learning_rate: float = 2e-4
    b1: float = 0.9  # Adam
    b2: float = 0.999  # Adam
    eps: float = 1e-8
    decay: float = 0.9  # RMSprop's rho
    eps_in_sqrt: bool = False  # RMSprop: g / sqrt(v + eps) (True) or g / (sqrt(v) + eps) (Keras)


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """The adversarial losses, all computed from D's logits."""

    reduction: Literal["mean", "sum"] = "mean"
    # Joint D updates minimise weight * (loss_real + loss_fake); D2L uses 0.5.
    d_loss_weight: float = 1.0
    # One-sided label smoothing: real targets are 1 - label_smoothing.
    label_smoothing: float = 0.0
    generator_loss: Literal["non_saturating", "minimax"] = "non_saturating"
    # An entry of `gan_jax.losses.OBJECTIVES`; BCE is every document's own.
    objective: Literal["bce", "least_squares", "hinge", "wgan", "wgan_gp", "semi_supervised"] = (
        "bce"
    )
    clip_value: float = 0.01  # WGAN: D's weights are clipped to [-clip_value, clip_value]
    gp_weight: float = 10.0  # WGAN-GP: the gradient penalty's weight (lambda)
    # Semi-supervised GAN: D minimises supervised loss + this * unsupervised (GAN) loss;
    # 0 trains D as a plain classifier on the labelled examples.
    unsupervised_weight: float = 1.0


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where training examples come from and how they are scaled for the models."""

    name: str  # 'gaussian_2d' | 'mnist' | 'pokemon' | 'quickdraw_camel'
    split: str = "train"
    data_dir: str | None = None
    # Stored values -> model inputs: 'none' (already float), 'zero_one' (uint8 / 255)
    # or 'minus_one_one' (uint8 / 127.5 - 1, i.e. Normalize(0.5, 0.5)).
    scaling: Literal["none", "zero_one", "minus_one_one"] = "minus_one_one"
    num_examples: int | None = None  # use only the first N examples
    # 'epoch': shuffled passes over the data; 'sequential': passes in stored order
    # (a plain loop over a PyTorch Dataset); 'with_replacement': each batch drawn
    # uniformly at random, as Keras examples do with np.random.randint.
    sampling: Literal["epoch", "sequential", "with_replacement"] = "epoch"
    # Semi-supervised training (`gan_jax.data.pipeline.semi_supervised`): keep the labels
    # of this many examples, balanced over the classes and chosen with `labelled_seed`;
    # every example also appears unlabelled (label -1). None: the data set as it is.
    num_labelled: int | None = None
    labelled_seed: int = 0
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole run."""

    experiment: str
    generator: ModelConfig
    discriminator: ModelConfig
    data: DataConfig
    g_optimizer: OptimizerConfig = OptimizerConfig()
    d_optimizer: OptimizerConfig = OptimizerConfig()
    loss: LossConfig = LossConfig()
    latent_dim: int = 100
    latent_distribution: Literal["normal", "uniform"] = "normal"  # uniform is U(-1, 1)
    num_classes: int = 0  # > 0 makes G and D conditional on a class label
    # 'joint': one D update on real and fake together; 'separate': one update on the
    # real batch, then one on the fake batch (Keras train_on_batch twice).
    d_update: Literal["joint", "separate"] = "joint"
    # 'shared': G's update reuses the latents (and labels) of D's update; 'fresh': new ones.
    g_noise: Literal["shared", "fresh"] = "fresh"
    # D updates (each as `d_update` says, each on its own real batch) per G update:
    # WGAN's n_critic (5 in Arjovsky et al. and Gulrajani et al.); 1 alternates.
    d_steps_per_g_step: int = 1
    compute_dtype: Literal["float32", "bfloat16"] = "float32"
    # > 0 keeps an exponential moving average of G's parameters with this decay
    # (updated after every G update), which sampling and scoring then use.
    g_ema_decay: float = 0.0
    batch_size: int = 64
    num_epochs: int = 1
    steps_per_epoch: int | None = None  # None: num_examples // batch_size
    seed: int = 0
    checkpoint_every_steps: int = 1000
    keep_checkpoints: int = 3
    steps_per_dispatch: int = 1000  # training steps run per jitted call
    # Local devices to train on (data parallel; a sweep group splits its members over
    # them); 0: all of them, or the most that divide the batch (or the members).
    num_devices: int = 0
    num_grid_samples: int = 64
    # Sample grid, loss plot and epoch hooks every this many epochs (metrics.jsonl
    # always gets one record per epoch).
    sample_every_epochs: int = 1


def to_dict(config: Any) -> dict[str, Any]:
    """Returns the config as plain JSON types."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(cls: type, values: Mapping[str, Any]) -> Any:
    """Rebuilds a (nested) config dataclass from `to_dict` output."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    kwargs = {}
    for name, value in values.items():
        field_type = _dataclass_in(hints[name])
        kwargs[name] = from_dict(field_type, value) if field_type and value is not None else value
    return cls(**kwargs)


def _dataclass_in(hint: Any) -> type | None:
    """The dataclass named by a type hint (also inside `X | None`), else None."""
    if dataclasses.is_dataclass(hint):
        return hint
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        for arg in typing.get_args(hint):
            if dataclasses.is_dataclass(arg):
                return arg
    return None


def replace(config: Config, **changes: Any) -> Config:
    """`dataclasses.replace` that also accepts dotted names, e.g. `loss.reduction`."""
    nested: dict[str, dict[str, Any]] = {}
    flat = {}
    for name, value in changes.items():
        if "." in name:
            head, tail = name.split(".", 1)
            nested.setdefault(head, {})[tail] = value
        else:
            flat[name] = value
    for head, sub in nested.items():
        flat[head] = dataclasses.replace(getattr(config, head), **sub)
    return dataclasses.replace(config, **flat)
