"""Adversarial objectives: D's and G's losses from D's outputs, behind one seam.

An `Objective` turns the discriminator's outputs on real and generated examples
into D's loss, G's loss and its own diagnostics. The training steps
(`gan_jax.steps`) call only the objective, so a new objective is one more entry in
`OBJECTIVES`. Two hooks cover what some objectives need beyond D's outputs on the
two batches: `penalty` runs D on other inputs (WGAN-GP's gradient penalty on
interpolates) and `constrain_discriminator` edits D's parameters after each update
(WGAN's weight clipping). An objective that declares `uses_real_labels` also gets the
real batch's class labels (the semi-supervised GAN's supervised loss); D itself never
sees them as an input unless the GAN is conditional.

`OBJECTIVES` holds six: 'bce', the documents' binary cross-entropy (the original
GAN); 'least_squares' (LSGAN); 'hinge'; 'wgan' (weight clipping); 'wgan_gp'
(gradient penalty); and 'semi_supervised' (D a K-class classifier). D's "sigmoid
output + binary cross-entropy" is written here as binary cross-entropy *with logits*:
the same function, without the log(0) that PyTorch's BCELoss clamps at -100 and Keras
clips at 1e-7. Everything is computed in float32.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp

from gan_jax.config import LossConfig

Reduction = Literal["mean", "sum"]
Metrics = dict[str, jax.Array]
# discriminate(x, labels) -> D's outputs (B,) on examples x, for the penalty hook.
Discriminate = Callable[[jax.Array, jax.Array | None], jax.Array]


def binary_cross_entropy_with_logits(logits: jax.Array, targets: jax.Array | float) -> jax.Array:
    """Elementwise -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], stable for any x."""
    logits = logits.astype(jnp.float32)
    # log sigmoid(x) = -softplus(-x) and log(1 - sigmoid(x)) = -softplus(x).
    return targets * jax.nn.softplus(-logits) + (1 - targets) * jax.nn.softplus(logits)


def reduce(losses: jax.Array, reduction: Reduction) -> jax.Array:
    """Sums or averages per-example losses."""
    if reduction == "mean":
        return jnp.mean(losses)
    if reduction == "sum":
        return jnp.sum(losses)
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def discriminator_real_loss(
    real_logits: jax.Array, *, label_smoothing: float = 0.0, reduction: Reduction = "mean"
) -> jax.Array:
    """BCE of D on real examples against targets 1 - label_smoothing (one-sided smoothing)."""
    return reduce(binary_cross_entropy_with_logits(real_logits, 1.0 - label_smoothing), reduction)


def discriminator_fake_loss(fake_logits: jax.Array, *, reduction: Reduction = "mean") -> jax.Array:
    """BCE of D on generated examples against target 0 (never smoothed)."""
    return reduce(binary_cross_entropy_with_logits(fake_logits, 0.0), reduction)


def discriminator_loss(
    real_logits: jax.Array,
    fake_logits: jax.Array,
    *,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    weight: float = 1.0,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """weight * (real loss + fake loss); also returns the two terms unweighted."""
    real = discriminator_real_loss(
        real_logits, label_smoothing=label_smoothing, reduction=reduction
    )
    fake = discriminator_fake_loss(fake_logits, reduction=reduction)
    return weight * (real + fake), (real, fake)


def generator_loss(
    fake_logits: jax.Array,
    *,
    kind: Literal["non_saturating", "minimax"] = "non_saturating",
    reduction: Reduction = "mean",
) -> jax.Array:
    """G's loss on D's logits for generated examples.

    'non_saturating' minimises -log D(G(z)) (BCE against target 1), the usual
    practice; 'minimax' minimises log(1 - D(G(z))) = -BCE against target 0, the
    objective of the original minimax game, whose gradient vanishes when D wins.
    """
    if kind == "non_saturating":
        losses = binary_cross_entropy_with_logits(fake_logits, 1.0)
    elif kind == "minimax":
        losses = -binary_cross_entropy_with_logits(fake_logits, 0.0)
    else:
        raise ValueError(f"generator loss must be 'non_saturating' or 'minimax', got {kind!r}")
    return reduce(losses, reduction)


@dataclasses.dataclass(frozen=True)
class Objective:
    """An adversarial objective: D's and G's losses from D's outputs, shape (B,).

    Subclasses define `real_loss`, `fake_loss` and `generator_loss`, declare their
    settings as fields (`from_config` fills them), and override the hooks they need; the
    defaults add no penalty, leave D's parameters alone and report no diagnostics.
    What D's outputs mean (logits, critic scores) is the objective's business.

    Attributes:
      reduction: how per-example losses become one: 'mean' or 'sum'.
      d_loss_weight: a joint D update minimises weight * (real loss + fake loss).
      uses_real_labels: whether D's loss and diagnostics read the real batch's class
        labels, so that training gathers them for an unconditional GAN too.
    """

    uses_real_labels: ClassVar[bool] = False

    reduction: Reduction = "mean"
    d_loss_weight: float = 1.0

    def __post_init__(self):
        # Fail when the objective is built, before anything is traced.
        if self.reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {self.reduction!r}")

    @classmethod
    def from_config(cls, config: LossConfig) -> "Objective":
        """The objective with the settings of `config`: each of its fields takes the
        `LossConfig` field of the same name (`generator_kind` takes `generator_loss`), so
        an objective's new setting is a field here and one in `LossConfig`."""
        return cls(
            **{
                field.name: getattr(config, _CONFIG_FIELDS.get(field.name, field.name))
                for field in dataclasses.fields(cls)
            }
        )

    def real_loss(self, real_out: jax.Array) -> jax.Array:
        """D's loss term on real examples (all of D's loss on a 'separate' real batch)."""
        raise NotImplementedError

    def fake_loss(self, fake_out: jax.Array) -> jax.Array:
        """D's loss term on generated examples (all of it on a 'separate' fake batch)."""
        raise NotImplementedError

    def discriminator_loss(
        self, real_out: jax.Array, fake_out: jax.Array, real_labels: jax.Array | None = None
    ) -> tuple[jax.Array, Metrics]:
        """D's loss on a real and a generated batch, for a joint D update.

        `real_labels` (the real batch's class labels, or None) are unused here; an
        objective with `uses_real_labels` reads them.

        Returns:
          weight * (real loss + fake loss), and the unweighted terms as
          {'loss_d_real', 'loss_d_fake'} (reduced as the loss is).
        """
        del real_labels
        real, fake = self.real_loss(real_out), self.fake_loss(fake_out)
        return self.d_loss_weight * (real + fake), {"loss_d_real": real, "loss_d_fake": fake}

    def generator_loss(self, fake_out: jax.Array) -> jax.Array:
        """G's loss on D's outputs for generated examples."""
        raise NotImplementedError

    def penalty(
        self,
        discriminate: Discriminate,
        real: jax.Array,
        fake: jax.Array,
        labels: jax.Array | None,
        key: jax.Array,
    ) -> tuple[jax.Array, Metrics] | None:
        """A term added to D's joint loss that runs D on other inputs; None for none.

        Args:
          discriminate: D's outputs on any examples, through the parameters being
            differentiated (so the penalty's gradient reaches them); BatchNorm
            statistics are not updated by it.
          real: the D update's real batch (scaled).
          fake: its generated batch (G's output, no gradient to G).
          labels: the real batch's class labels; None for an unconditional GAN.
          key: a PRNG key of this D update (WGAN-GP's interpolation weights).

        Returns:
          None, or (penalty, metrics): the penalty is added to D's loss as it is.
        """
        del discriminate, real, fake, labels, key
        return None

    def constrain_discriminator(self, params: Any) -> Any:
        """D's parameters after each D update (WGAN clips them); unchanged here."""
        return params

    def diagnostics(
        self, real_out: jax.Array, fake_out: jax.Array, real_labels: jax.Array | None = None
    ) -> Metrics:
        """Metrics of D's outputs in a D update, logged beside the losses (`real_labels`
        as in `discriminator_loss`)."""
        del real_out, fake_out, real_labels
        return {}


# Objective fields whose `LossConfig` field has another name (`generator_loss` is a
# method of every objective).
_CONFIG_FIELDS = {"generator_kind": "generator_loss"}


@dataclasses.dataclass(frozen=True)
class _CrossEntropyGenerator(Objective):
    """An objective whose G minimises a cross-entropy on D's real/fake logit, in one of
    two kinds.

    Attributes:
      generator_kind: 'non_saturating' or 'minimax' (see `generator_loss`).
    """

    generator_kind: Literal["non_saturating", "minimax"] = "non_saturating"

    def __post_init__(self):
        super().__post_init__()
        # At construction, not at the first traced G loss: a bad name is a config error.
        if self.generator_kind not in ("non_saturating", "minimax"):
            raise ValueError(
                f"generator loss must be 'non_saturating' or 'minimax', got {self.generator_kind!r}"
            )


@dataclasses.dataclass(frozen=True)
class BinaryCrossEntropy(_CrossEntropyGenerator):
    """The original GAN objective (Goodfellow et al., 2014) on D's logits.

    Attributes:
      label_smoothing: one-sided: real targets are 1 - label_smoothing.
    """

    label_smoothing: float = 0.0

    def real_loss(self, real_out: jax.Array) -> jax.Array:
        """BCE against the (smoothed) real target."""
        return discriminator_real_loss(
            real_out, label_smoothing=self.label_smoothing, reduction=self.reduction
        )

    def fake_loss(self, fake_out: jax.Array) -> jax.Array:
        """BCE against target 0."""
        return discriminator_fake_loss(fake_out, reduction=self.reduction)

    def generator_loss(self, fake_out: jax.Array) -> jax.Array:
        """Non-saturating or minimax G loss."""
        return generator_loss(fake_out, kind=self.generator_kind, reduction=self.reduction)

    def diagnostics(
        self, real_out: jax.Array, fake_out: jax.Array, real_labels: jax.Array | None = None
    ) -> Metrics:
        """D's mean probabilities on real and generated data, and its accuracy."""
        del real_labels
        return {
            "d_real": jnp.mean(jax.nn.sigmoid(real_out)),  # mean D(x) on real data
            "d_fake": jnp.mean(jax.nn.sigmoid(fake_out)),  # mean D(G(z)) before D's update
            "d_accuracy": (jnp.mean(real_out > 0) + jnp.mean(fake_out < 0)) / 2,
        }


@dataclasses.dataclass(frozen=True)
class _OnRawOutputs(Objective):
    """An objective on D's raw (unbounded) outputs, given by its per-example terms in
    float32; its diagnostics are D's mean outputs on the two batches."""

    def real_term(self, real_out: jax.Array) -> jax.Array:
        raise NotImplementedError

    def fake_term(self, fake_out: jax.Array) -> jax.Array:
        raise NotImplementedError

    def generator_term(self, fake_out: jax.Array) -> jax.Array:
        raise NotImplementedError

    def real_loss(self, real_out: jax.Array) -> jax.Array:
        return reduce(self.real_term(real_out.astype(jnp.float32)), self.reduction)

    def fake_loss(self, fake_out: jax.Array) -> jax.Array:
        return reduce(self.fake_term(fake_out.astype(jnp.float32)), self.reduction)

    def generator_loss(self, fake_out: jax.Array) -> jax.Array:
        return reduce(self.generator_term(fake_out.astype(jnp.float32)), self.reduction)

    def diagnostics(
        self, real_out: jax.Array, fake_out: jax.Array, real_labels: jax.Array | None = None
    ) -> Metrics:
        del real_labels
        return {"d_out_real": jnp.mean(real_out), "d_out_fake": jnp.mean(fake_out)}


@dataclasses.dataclass(frozen=True)
class LeastSquares(_OnRawOutputs):
    """LSGAN (Mao et al., 2017), their a = 0, b = c = 1 coding: D minimises
    ½(D(x) - 1)² + ½D(G(z))², G minimises ½(D(G(z)) - 1)², on D's raw outputs."""

    def real_term(self, real_out: jax.Array) -> jax.Array:
        return 0.5 * jnp.square(real_out - 1)

    def fake_term(self, fake_out: jax.Array) -> jax.Array:
        return 0.5 * jnp.square(fake_out)

    def generator_term(self, fake_out: jax.Array) -> jax.Array:
        return 0.5 * jnp.square(fake_out - 1)


@dataclasses.dataclass(frozen=True)
class Hinge(_OnRawOutputs):
    """The hinge loss (Lim & Ye, 2017; Miyato et al., 2018): D minimises
    max(0, 1 - D(x)) + max(0, 1 + D(G(z))), G minimises -D(G(z))."""

    def real_term(self, real_out: jax.Array) -> jax.Array:
        return jax.nn.relu(1 - real_out)

    def fake_term(self, fake_out: jax.Array) -> jax.Array:
        return jax.nn.relu(1 + fake_out)

    def generator_term(self, fake_out: jax.Array) -> jax.Array:
        return -fake_out


@dataclasses.dataclass(frozen=True)
class Wasserstein(_OnRawOutputs):
    """WGAN (Arjovsky et al., 2017): the critic maximises E[D(x)] - E[D(G(z))] with
    its weights clipped to [-clip_value, clip_value] after each update; G minimises
    -E[D(G(z))]. `wasserstein` is the critic's estimate E[D(x)] - E[D(G(z))]."""

    clip_value: float = 0.01

    def real_term(self, real_out: jax.Array) -> jax.Array:
        return -real_out

    def fake_term(self, fake_out: jax.Array) -> jax.Array:
        return fake_out

    def generator_term(self, fake_out: jax.Array) -> jax.Array:
        return -fake_out

    def constrain_discriminator(self, params: Any) -> Any:
        return jax.tree.map(lambda p: jnp.clip(p, -self.clip_value, self.clip_value), params)

    def diagnostics(
        self, real_out: jax.Array, fake_out: jax.Array, real_labels: jax.Array | None = None
    ) -> Metrics:
        means = super().diagnostics(real_out, fake_out, real_labels)
        return {**means, "wasserstein": means["d_out_real"] - means["d_out_fake"]}


@dataclasses.dataclass(frozen=True)
class WassersteinGradientPenalty(Wasserstein):
    """WGAN-GP (Gulrajani et al., 2017): WGAN's critic loss, no clipping, plus
    gp_weight * (|grad_x D(x_hat)|_2 - 1)^2 at x_hat = e x + (1 - e) G(z), with
    e ~ U[0, 1] per example."""

    gp_weight: float = 10.0

    def constrain_discriminator(self, params: Any) -> Any:
        return params

    def penalty(
        self,
        discriminate: Discriminate,
        real: jax.Array,
        fake: jax.Array,
        labels: jax.Array | None,
        key: jax.Array,
    ) -> tuple[jax.Array, Metrics]:
        shape = (real.shape[0],) + (1,) * (real.ndim - 1)
        e = jax.random.uniform(key, shape, jnp.float32)
        x_hat = e * real.astype(jnp.float32) + (1 - e) * fake.astype(jnp.float32)
        # Each output depends on its own example only, so the gradient of their sum
        # holds every example's gradient.
        grads = jax.grad(lambda x: jnp.sum(discriminate(x, labels).astype(jnp.float32)))(x_hat)
        norms = jnp.sqrt(jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim))))
        penalty = reduce(jnp.square(norms - 1), self.reduction)
        metrics = {"gradient_penalty": penalty, "grad_norm_x_hat": jnp.mean(norms)}
        return self.gp_weight * penalty, metrics


def _masked_reduce(losses: jax.Array, mask: jax.Array, reduction: Reduction) -> jax.Array:
    """`reduce` over the rows where `mask` holds (0 when none does)."""
    total = jnp.sum(jnp.where(mask, losses, 0.0))
    if reduction == "sum":
        return total
    return total / jnp.maximum(jnp.sum(mask), 1)


@dataclasses.dataclass(frozen=True)
class SemiSupervised(_CrossEntropyGenerator):
    """The semi-supervised GAN (Odena, 2016; Salimans et al., 2016, section 5).

    D outputs K class logits l(x) (shape (B, K)); the fake class K+1 has its logit
    fixed at 0 (Salimans et al.'s parametrisation), so D's probability that x is real
    is D(x) = Z/(Z + 1) with Z = sum_k exp(l_k(x)), i.e. D's real/fake logit is
    logsumexp(l(x)). Real rows with a class label (>= 0) get the supervised loss, the
    softmax cross-entropy of l(x) with their label; real rows with label -1
    (`gan_jax.data.pipeline.UNLABELLED`) and generated rows get the unsupervised
    loss BCE(lse(l(x)), 1) + BCE(lse(l(G(z))), 0). D minimises supervised +
    unsupervised_weight * unsupervised; G minimises BCE(lse(l(G(z))), 1)
    (non-saturating) or the minimax -BCE(lse(l(G(z))), 0). Each term is a mean over
    its own rows.

    With unsupervised_weight 0 the unsupervised term is left out of D's loss, so
    D's update does not depend on G at all: D trains as a plain classifier of the
    labelled rows (the no-GAN baseline), on the same data and steps.

    Attributes:
      unsupervised_weight: the weight of the unsupervised (GAN) part of D's loss.
    """

    uses_real_labels: ClassVar[bool] = True

    unsupervised_weight: float = 1.0

    @staticmethod
    def real_logit(out: jax.Array) -> jax.Array:
        """D's real/fake logit from its K class logits: logsumexp over the classes."""
        return jax.nn.logsumexp(out.astype(jnp.float32), axis=-1)

    def supervised_loss(self, real_out: jax.Array, real_labels: jax.Array) -> jax.Array:
        """Softmax cross-entropy of the labelled rows (label >= 0)."""
        logits = real_out.astype(jnp.float32)
        labelled = real_labels >= 0
        classes = jnp.where(labelled, real_labels, 0)
        picked = jnp.take_along_axis(logits, classes[:, None], axis=-1)[:, 0]
        return _masked_reduce(self.real_logit(logits) - picked, labelled, self.reduction)

    def real_loss(self, real_out: jax.Array, real_labels: jax.Array | None = None) -> jax.Array:
        """BCE(lse, 1) on the unlabelled real rows (all rows without labels)."""
        losses = binary_cross_entropy_with_logits(self.real_logit(real_out), 1.0)
        if real_labels is None:
            return reduce(losses, self.reduction)
        return _masked_reduce(losses, real_labels < 0, self.reduction)

    def fake_loss(self, fake_out: jax.Array) -> jax.Array:
        """BCE(lse, 0) on the generated rows."""
        return discriminator_fake_loss(self.real_logit(fake_out), reduction=self.reduction)

    def discriminator_loss(
        self, real_out: jax.Array, fake_out: jax.Array, real_labels: jax.Array | None = None
    ) -> tuple[jax.Array, Metrics]:
        """weight * (supervised + unsupervised_weight * (real + fake)) and the terms.

        Returns:
          D's loss, and {'loss_d_supervised', 'loss_d_real', 'loss_d_fake'}.
        """
        if real_labels is None:
            raise ValueError("the semi-supervised objective needs the real batch's labels")
        supervised = self.supervised_loss(real_out, real_labels)
        real = self.real_loss(real_out, real_labels)
        fake = self.fake_loss(fake_out)
        loss = supervised
        if self.unsupervised_weight:  # left out at 0, so that nothing of G reaches D
            loss = loss + self.unsupervised_weight * (real + fake)
        terms = {"loss_d_supervised": supervised, "loss_d_real": real, "loss_d_fake": fake}
        return self.d_loss_weight * loss, terms

    def generator_loss(self, fake_out: jax.Array) -> jax.Array:
        """Non-saturating or minimax G loss on D's real/fake logit."""
        return generator_loss(
            self.real_logit(fake_out), kind=self.generator_kind, reduction=self.reduction
        )

    def diagnostics(
        self, real_out: jax.Array, fake_out: jax.Array, real_labels: jax.Array | None = None
    ) -> Metrics:
        """Mean D(x) on unlabelled real rows and D(G(z)), and the accuracy of the K
        logits' argmax on the batch's labelled rows (in training mode)."""
        if real_labels is None:
            raise ValueError("the semi-supervised objective needs the real batch's labels")
        labelled = real_labels >= 0
        correct = jnp.argmax(real_out, axis=-1) == real_labels
        return {
            "d_real": _masked_reduce(jax.nn.sigmoid(self.real_logit(real_out)), ~labelled, "mean"),
            "d_fake": jnp.mean(jax.nn.sigmoid(self.real_logit(fake_out))),
            "labelled_accuracy": _masked_reduce(correct.astype(jnp.float32), labelled, "mean"),
            "labelled_fraction": jnp.mean(labelled.astype(jnp.float32)),
        }


# Objectives by name: a new one is one entry here (and its name in `LossConfig`).
OBJECTIVES: dict[str, type[Objective]] = {
    "bce": BinaryCrossEntropy,
    "least_squares": LeastSquares,
    "hinge": Hinge,
    "wgan": Wasserstein,
    "wgan_gp": WassersteinGradientPenalty,
    "semi_supervised": SemiSupervised,
}


def create_objective(name: str, config: LossConfig) -> Objective:
    """The objective `name` of `OBJECTIVES`, with the settings of `config`."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; known: {sorted(OBJECTIVES)}")
    return OBJECTIVES[name].from_config(config)


def from_config(config: LossConfig) -> Objective:
    """The objective that a run's `LossConfig` describes."""
    return create_objective(config.objective, config)


def uses_real_labels(config: LossConfig) -> bool:
    """Whether the objective of `config` reads the real batches' class labels."""
    return from_config(config).uses_real_labels
