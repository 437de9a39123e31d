"""Losses against hand-computed values; the objective registry against the functions."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import losses
from gan_jax.config import LossConfig

LOGITS = jnp.array([2.0, -1.0, 0.0])


def bce(logit: float, target: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_bce_with_logits_matches_definition():
    got = losses.binary_cross_entropy_with_logits(LOGITS, 0.9)
    np.testing.assert_allclose(got, [bce(x, 0.9) for x in [2.0, -1.0, 0.0]], rtol=1e-6)
    assert float(losses.binary_cross_entropy_with_logits(jnp.array(0.0), 1.0)) == pytest.approx(
        math.log(2)
    )


def test_bce_with_logits_is_finite_for_extreme_logits():
    got = losses.binary_cross_entropy_with_logits(jnp.array([1e4, -1e4]), jnp.array([0.0, 1.0]))
    np.testing.assert_allclose(got, [1e4, 1e4], rtol=1e-6)


def test_discriminator_loss_mean_with_label_smoothing():
    real, fake = jnp.array([2.0, -1.0]), jnp.array([0.5, -3.0])
    loss, (real_loss, fake_loss) = losses.discriminator_loss(
        real, fake, label_smoothing=0.1, reduction="mean"
    )
    want_real = (bce(2.0, 0.9) + bce(-1.0, 0.9)) / 2
    want_fake = (bce(0.5, 0.0) + bce(-3.0, 0.0)) / 2
    assert float(real_loss) == pytest.approx(want_real, rel=1e-6)
    assert float(fake_loss) == pytest.approx(want_fake, rel=1e-6)
    assert float(loss) == pytest.approx(want_real + want_fake, rel=1e-6)


def test_discriminator_loss_sum_halved_as_d2l():
    real, fake = jnp.array([2.0, -1.0, 0.3]), jnp.array([0.5, -3.0, 1.0])
    loss, _ = losses.discriminator_loss(real, fake, reduction="sum", weight=0.5)
    want = sum(bce(x, 1.0) for x in [2.0, -1.0, 0.3]) + sum(bce(x, 0.0) for x in [0.5, -3.0, 1.0])
    assert float(loss) == pytest.approx(want / 2, rel=1e-6)


def test_at_equilibrium_d2l_losses_are_ln2():
    zeros = jnp.zeros(8)
    loss_d, _ = losses.discriminator_loss(zeros, zeros, reduction="sum", weight=0.5)
    loss_g = losses.generator_loss(zeros, reduction="sum")
    assert float(loss_d) / 8 == pytest.approx(math.log(2), rel=1e-6)
    assert float(loss_g) / 8 == pytest.approx(math.log(2), rel=1e-6)


def test_generator_losses():
    ns = losses.generator_loss(LOGITS, kind="non_saturating")
    mm = losses.generator_loss(LOGITS, kind="minimax")
    # non-saturating: -log D(G(z)); minimax: log(1 - D(G(z))).
    want_ns = np.mean([-math.log(1 / (1 + math.exp(-x))) for x in [2.0, -1.0, 0.0]])
    want_mm = np.mean([math.log(1 - 1 / (1 + math.exp(-x))) for x in [2.0, -1.0, 0.0]])
    assert float(ns) == pytest.approx(want_ns, rel=1e-6)
    assert float(mm) == pytest.approx(want_mm, rel=1e-6)
    assert float(losses.generator_loss(LOGITS, reduction="sum")) == pytest.approx(3 * want_ns)


def test_bad_names_raise():
    with pytest.raises(ValueError, match="reduction"):
        losses.reduce(LOGITS, "max")
    with pytest.raises(ValueError, match="generator loss"):
        losses.generator_loss(LOGITS, kind="wasserstein")


REAL, FAKE = jnp.array([2.0, -1.0, 0.3, 4.0]), jnp.array([0.5, -3.0, 1.0, -0.2])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weight", [1.0, 0.5])
@pytest.mark.parametrize("kind", ["non_saturating", "minimax"])
def test_bce_objective_equals_the_functions(reduction, label_smoothing, weight, kind):
    config = LossConfig(
        reduction=reduction,
        d_loss_weight=weight,
        label_smoothing=label_smoothing,
        generator_loss=kind,
    )
    objective = losses.from_config(config)
    assert isinstance(objective, losses.BinaryCrossEntropy)
    loss, terms = objective.discriminator_loss(REAL, FAKE)
    want, (want_real, want_fake) = losses.discriminator_loss(
        REAL, FAKE, label_smoothing=label_smoothing, reduction=reduction, weight=weight
    )
    np.testing.assert_array_equal(loss, want)
    np.testing.assert_array_equal(terms["loss_d_real"], want_real)
    np.testing.assert_array_equal(terms["loss_d_fake"], want_fake)
    np.testing.assert_array_equal(objective.real_loss(REAL), want_real)
    np.testing.assert_array_equal(objective.fake_loss(FAKE), want_fake)
    np.testing.assert_array_equal(
        objective.generator_loss(FAKE),
        losses.generator_loss(FAKE, kind=kind, reduction=reduction),
    )


def test_bce_objective_against_hand_computed_values():
    objective = losses.from_config(LossConfig(reduction="sum", d_loss_weight=0.5))
    loss, _ = objective.discriminator_loss(REAL[:2], FAKE[:2])
    want = bce(2.0, 1.0) + bce(-1.0, 1.0) + bce(0.5, 0.0) + bce(-3.0, 0.0)
    assert float(loss) == pytest.approx(want / 2, rel=1e-6)
    minimax = losses.from_config(LossConfig(generator_loss="minimax"))
    assert float(minimax.generator_loss(jnp.array([0.5]))) == pytest.approx(-bce(0.5, 0.0))


def test_bce_diagnostics():
    metrics = losses.from_config(LossConfig()).diagnostics(REAL, FAKE)
    sigmoid = lambda x: 1 / (1 + math.exp(-x))
    assert float(metrics["d_real"]) == pytest.approx(np.mean([sigmoid(x) for x in REAL.tolist()]))
    assert float(metrics["d_fake"]) == pytest.approx(np.mean([sigmoid(x) for x in FAKE.tolist()]))
    # Real logits > 0: 3 of 4; fake logits < 0: 2 of 4.
    assert float(metrics["d_accuracy"]) == pytest.approx((3 / 4 + 2 / 4) / 2)


def test_default_hooks_add_nothing():
    objective = losses.from_config(LossConfig())
    params = {"w": jnp.ones(3)}
    assert objective.constrain_discriminator(params) is params
    key = jax.random.key(0)
    assert objective.penalty(lambda x, y: x, REAL, FAKE, None, key) is None


def test_registry():
    assert losses.OBJECTIVES["bce"] is losses.BinaryCrossEntropy
    assert isinstance(losses.create_objective("bce", LossConfig()), losses.BinaryCrossEntropy)
    with pytest.raises(ValueError, match="unknown objective 'nope'"):
        losses.create_objective("nope", LossConfig())
    for name, cls in losses.OBJECTIVES.items():
        assert type(losses.from_config(LossConfig(objective=name))) is cls
    with pytest.raises(ValueError, match="reduction"):
        losses.from_config(LossConfig(reduction="max"))
    with pytest.raises(ValueError, match="generator loss"):
        losses.from_config(LossConfig(generator_loss="wasserstein"))


def test_each_objective_takes_its_settings_from_the_loss_config():
    changed = LossConfig(
        reduction="sum",
        d_loss_weight=0.5,
        label_smoothing=0.1,
        generator_loss="minimax",
        clip_value=0.02,
        gp_weight=5.0,
        unsupervised_weight=0.0,
    )
    config_name = {"generator_kind": "generator_loss"}
    for name in losses.OBJECTIVES:
        built = losses.from_config(dataclasses.replace(changed, objective=name))
        for field in dataclasses.fields(built):
            expected = getattr(changed, config_name.get(field.name, field.name))
            assert getattr(built, field.name) == expected, (name, field.name)


# D's outputs on 2 real and 2 generated examples, for the objectives' hand-computed values.
OUT_REAL, OUT_FAKE = jnp.array([2.0, -0.5]), jnp.array([0.5, -3.0])


def objective(name, **settings):
    return losses.from_config(LossConfig(objective=name, **settings))


def test_least_squares_against_hand_computed_values():
    ls = objective("least_squares")
    # D: ½(D(x) - 1)² on real, ½D(G(z))² on fake; G: ½(D(G(z)) - 1)²; means over 2.
    assert float(ls.real_loss(OUT_REAL)) == pytest.approx((0.5 * 1 + 0.5 * 2.25) / 2)
    assert float(ls.fake_loss(OUT_FAKE)) == pytest.approx((0.5 * 0.25 + 0.5 * 9) / 2)
    assert float(ls.generator_loss(OUT_FAKE)) == pytest.approx((0.5 * 0.25 + 0.5 * 16) / 2)


def test_hinge_against_hand_computed_values():
    hinge = objective("hinge", reduction="sum")
    assert float(hinge.real_loss(OUT_REAL)) == pytest.approx(0 + 1.5)  # relu(1 - D(x))
    assert float(hinge.fake_loss(OUT_FAKE)) == pytest.approx(1.5 + 0)  # relu(1 + D(G(z)))
    assert float(hinge.generator_loss(OUT_FAKE)) == pytest.approx(2.5)  # -sum D(G(z))


def test_wasserstein_losses_and_estimate():
    wgan = objective("wgan")
    loss, terms = wgan.discriminator_loss(OUT_REAL, OUT_FAKE)
    assert float(terms["loss_d_real"]) == pytest.approx(-0.75)
    assert float(terms["loss_d_fake"]) == pytest.approx(-1.25)
    assert float(loss) == pytest.approx(-2.0)
    assert float(wgan.generator_loss(OUT_FAKE)) == pytest.approx(1.25)
    # The critic's estimate of the distance: E[D(x)] - E[D(G(z))] = -(its loss).
    assert float(wgan.diagnostics(OUT_REAL, OUT_FAKE)["wasserstein"]) == pytest.approx(2.0)
    clipped = wgan.constrain_discriminator({"w": jnp.array([-1.0, 0.005, 0.3])})
    np.testing.assert_allclose(clipped["w"], [-0.01, 0.005, 0.01])


def test_gradient_penalty_against_finite_differences():
    w = jax.random.normal(jax.random.key(1), (3, 4))

    def discriminate(x, labels):  # a small nonlinear critic, per example
        return jnp.sum(jnp.tanh(x @ w), axis=1)

    real = jax.random.normal(jax.random.key(2), (5, 3))
    fake = jax.random.normal(jax.random.key(3), (5, 3))
    key = jax.random.key(4)
    penalty, metrics = objective("wgan_gp", gp_weight=10.0).penalty(
        discriminate, real, fake, None, key
    )
    # The same interpolates, and each one's gradient norm by central differences.
    e = jax.random.uniform(key, (5, 1))
    x_hat = np.asarray(e * real + (1 - e) * fake, np.float64)
    w64, h = np.asarray(w, np.float64), 1e-5

    def d64(x):
        return np.sum(np.tanh(x @ w64))

    norms = []
    for x in x_hat:
        grad = [(d64(x + h * u) - d64(x - h * u)) / (2 * h) for u in np.eye(3)]
        norms.append(np.linalg.norm(grad))
    expected = np.mean((np.array(norms) - 1) ** 2)
    assert float(metrics["gradient_penalty"]) == pytest.approx(expected, rel=1e-4)
    assert float(penalty) == pytest.approx(10 * expected, rel=1e-4)
    assert objective("wgan_gp").constrain_discriminator({"w": jnp.ones(2)})["w"][0] == 1.0
