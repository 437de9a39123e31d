"""An experiment's settings: the values its document fixes, each one a flag.

An experiment file declares its settings as a frozen dataclass derived from
`RunSettings`, whose defaults are the document's values, and a pure function
`config(**overrides) -> Config` that builds the run from them. Nothing here reads
flags: `gan_jax.run_experiment` turns the fields into absl flags (name, type, help,
check), and a test, a benchmark or a sweep calls `config(lr=1e-3)` in-process.

    @dataclasses.dataclass(frozen=True)
    class Settings(RunSettings):
        batch_size: int = 100  # a run setting with this document's value
        lr: float = setting(0.002, "Adam learning rate of D and G.", POSITIVE)
"""

import dataclasses
import typing
from collections.abc import Callable
from typing import Any, Literal

from gan_jax.config import Config, DataConfig, LossConfig, OptimizerConfig, replace
from gan_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Check:
    """A rule a setting's value must satisfy, and how to say so when it does not."""

    holds: Callable[[Any], bool]
    requirement: str  # completes "--lr ...", e.g. "must be positive"


POSITIVE = Check(lambda v: v > 0, "must be positive")
NON_NEGATIVE = Check(lambda v: v >= 0, "must be >= 0")
POSITIVE_OR_NONE = Check(lambda v: v is None or v > 0, "must be positive")
OPEN_UNIT_INTERVAL = Check(lambda v: 0 < v < 1, "must be in (0, 1)")
HALF_OPEN_UNIT_INTERVAL = Check(lambda v: 0 <= v < 1, "must be in [0, 1)")
UNIT_INTERVAL = Check(lambda v: 0 <= v <= 1, "must be in [0, 1]")
WIDTHS = Check(lambda v: all(w > 0 for w in v), "must hold positive widths")


def setting(default: Any, help: str, check: Check | None = None) -> Any:
    """A settings field: its default, its flag's help and the check its value must pass."""
    return dataclasses.field(default=default, metadata={"help": help, "check": check})


def dataset_setting(default: str, shape: str) -> Any:
    """The `--dataset` setting of an image experiment: its document's data set by default."""
    return setting(
        default,
        f"The training images: {default} (the document's) or any prepared set of {shape} "
        "images, by name: your own folder (python -m gan_jax.data.prepare image_folder "
        "--path=DIR --name=NAME) or a TFDS data set prepared in --data_dir.",
    )


def _default(config_class: type, name: str) -> Any:
    """A config field's default: defaults are stated once, in `gan_jax.config`."""
    return {field.name: field.default for field in dataclasses.fields(config_class)}[name]


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Settings every experiment has; an experiment overrides defaults with its document's.

    A subclass may restate a field with a new default alone (`batch_size: int = 100`): its
    help and check are still this class's.
    """

    seed: int = setting(
        _default(Config, "seed"), "Seed of initialisation, latents, dropout and data order."
    )
    num_epochs: int = setting(_default(Config, "num_epochs"), "Training epochs.", POSITIVE)
    batch_size: int = setting(
        _default(Config, "batch_size"), "Examples per training step.", POSITIVE
    )
    checkpoint_every_steps: int = setting(
        _default(Config, "checkpoint_every_steps"),
        "Save a checkpoint every this many steps (and at the end).",
        POSITIVE,
    )
    keep_checkpoints: int = setting(
        _default(Config, "keep_checkpoints"), "How many checkpoints to keep.", POSITIVE
    )
    steps_per_dispatch: int = setting(
        _default(Config, "steps_per_dispatch"),
        "Training steps per jitted call (metrics are read back per call).",
        POSITIVE,
    )
    num_devices: int = setting(
        _default(Config, "num_devices"),
        "Local devices to train on, data parallel (a sweep splits its members over them); "
        "0: all, or the most that divide the batch (the members).",
        NON_NEGATIVE,
    )
    num_examples: int | None = setting(
        _default(DataConfig, "num_examples"),
        "Train on the first N examples only (default: all).",
        POSITIVE_OR_NONE,
    )
    data_dir: str | None = setting(
        _default(DataConfig, "data_dir"),
        "TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets).",
    )
    compute_dtype: Literal["float32", "bfloat16"] = setting(
        _default(Config, "compute_dtype"),
        "Activation dtype; bfloat16 is mixed precision (float32 parameters and optimizer state).",
    )
    num_grid_samples: int = setting(
        _default(Config, "num_grid_samples"),
        "Samples in each epoch's grid (from fixed latents).",
        POSITIVE,
    )
    sample_every_epochs: int = setting(
        _default(Config, "sample_every_epochs"),
        "Write the sample grid and loss plot every this many epochs.",
        POSITIVE,
    )
    loss: Literal["bce", "least_squares", "hinge", "wgan", "wgan_gp"] = setting(
        _default(LossConfig, "objective"),
        "The adversarial objective: bce (the documents'), least_squares (LSGAN), hinge, wgan "
        "(weight clipping) or wgan_gp (gradient penalty). WGAN and WGAN-GP bring their "
        "papers' n_critic 5 and optimizers (RMSprop 5e-5; Adam 1e-4, betas 0, 0.9) unless "
        "--n_critic or the experiment's optimizer flags are given.",
    )
    n_critic: int | None = setting(
        None,
        "D updates per G update, each on its own real batch (default: 5 for wgan and "
        "wgan_gp, else the document's).",
        POSITIVE_OR_NONE,
    )
    clip_value: float = setting(
        _default(LossConfig, "clip_value"), "WGAN: D's weights are clipped to ±this.", POSITIVE
    )
    gp_weight: float = setting(
        _default(LossConfig, "gp_weight"), "WGAN-GP: the gradient penalty's weight.", POSITIVE
    )
    spectral_norm: bool = setting(
        False,
        "Spectrally normalise D's kernels (Miyato et al. 2018; one power iteration per "
        "call); a convolutional D then drops its BatchNorm, as SNGAN's do.",
    )
    g_ema_decay: float = setting(
        _default(Config, "g_ema_decay"),
        "If > 0, keep an exponential moving average of G's weights with this decay (e.g. "
        "0.999); samples, grids and scores then use it (`sample`/`evaluate` "
        "--raw_generator use G itself).",
        HALF_OPEN_UNIT_INTERVAL,
    )

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not _has_type(value, hints[field.name]):
                raise UserError(f"{field.name}={value!r} is not {_type_words(hints[field.name])}")
            if hints[field.name] is float and isinstance(value, int):
                # As a float flag would give it: the config's JSON (and digest) stay the same.
                object.__setattr__(self, field.name, float(value))
            check = describe(type(self), field.name)[1]
            if check is not None and not check.holds(value):
                raise UserError(f"{field.name}={value!r} {check.requirement}")

    def run_fields(self) -> dict[str, Any]:
        """The run-wide `gan_jax.config.Config` fields (all but the data's)."""
        return {
            name: getattr(self, name)
            for name in (
                "seed",
                "num_epochs",
                "batch_size",
                "checkpoint_every_steps",
                "keep_checkpoints",
                "steps_per_dispatch",
                "num_devices",
                "compute_dtype",
                "num_grid_samples",
                "sample_every_epochs",
            )
        }

    def with_gan_options(self, config: Config) -> Config:
        """`config` (the document's run) with the GAN options these settings choose: the
        objective (its losses, n_critic D updates per G update, a joint D update for a
        penalty), D's spectral normalisation and G's moving average."""
        if self.spectral_norm:
            discriminator = config.discriminator
            kwargs = {**discriminator.kwargs, "spectral_norm": True}
            config = dataclasses.replace(
                config, discriminator=dataclasses.replace(discriminator, kwargs=kwargs)
            )
        if self.g_ema_decay:
            config = replace(config, g_ema_decay=self.g_ema_decay)
        if self.loss == "bce" and self.n_critic is None:
            return config  # the document's own objective, untouched
        n_critic = self.n_critic or (5 if self.loss in PAPER_OPTIMIZERS else None)
        changes: dict[str, Any] = {
            "loss.objective": self.loss,
            "loss.clip_value": self.clip_value,
            "loss.gp_weight": self.gp_weight,
        }
        if n_critic is not None:
            changes["d_steps_per_g_step"] = n_critic
        if self.loss == "wgan_gp":
            changes["d_update"] = "joint"  # the penalty is a term of one joint D loss
        return replace(config, **changes)

    def data_fields(self) -> dict[str, Any]:
        """The `gan_jax.config.DataConfig` fields every experiment takes from its settings."""
        return {"data_dir": self.data_dir, "num_examples": self.num_examples}


# The optimizers the WGAN papers train with, for G and D alike: Arjovsky et al. (2017),
# Algorithm 1 (RMSprop, lr 5e-5); Gulrajani et al. (2017), Algorithm 1 (Adam, lr 1e-4,
# betas 0 and 0.9). `gan_jax.run_experiment` uses them when no optimizer flag is given.
PAPER_OPTIMIZERS = {
    "wgan": OptimizerConfig("rmsprop", learning_rate=5e-5),
    "wgan_gp": OptimizerConfig("adam", learning_rate=1e-4, b1=0.0, b2=0.9),
}


def describe(settings_class: type, name: str) -> tuple[str, Check | None]:
    """A field's help and check, from the nearest class in the hierarchy that states them."""
    for klass in settings_class.__mro__:
        field = getattr(klass, "__dataclass_fields__", {}).get(name)
        if field is not None and "help" in field.metadata:
            return field.metadata["help"], field.metadata["check"]
    return "", None


def _has_type(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return isinstance(value, tuple) and all(_has_type(v, item) for v in value)
    if origin is not None:  # X | None
        return any(_has_type(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_words(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(hint))
    return f"of type {getattr(hint, '__name__', str(hint))}"
