"""Experiment settings: checks, flags generated from them, and configs built in-process."""

import dataclasses
import importlib
import json

import pytest
from absl import flags

from gan_jax import command
from gan_jax.config import Config, DataConfig, to_dict
from gan_jax.errors import UserError
from gan_jax.run_experiment import run_config
from gan_jax.settings import PAPER_OPTIMIZERS, RunSettings, describe

EXPERIMENTS = (
    "gaussian_2d",
    "mlp_gan_mnist",
    "mlp_gan_mnist_deep",
    "cgan_mnist",
    "dcgan_pokemon",
    "quickdraw_camel",
)


def load(name):
    return importlib.import_module(f"experiments.{name}")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batch_size": 0}, "batch_size=0 must be positive"),
        ({"num_examples": -5}, "num_examples=-5 must be positive"),
        ({"batch_size": 2.5}, "batch_size=2.5 is not of type int"),
        ({"seed": True}, "seed=True is not of type int"),
        ({"compute_dtype": "float16"}, "compute_dtype='float16' is not one of 'float32'"),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(changes, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RunSettings(**changes)


def test_an_integer_given_for_a_float_becomes_a_float():
    mlp = load("mlp_gan_mnist")
    settings = mlp.Settings(lr=1)
    assert isinstance(settings.lr, float)
    assert json.dumps(to_dict(mlp.config(lr=1))) == json.dumps(to_dict(mlp.config(lr=1.0)))


def test_a_restated_run_setting_keeps_its_help_and_check():
    mlp = load("mlp_gan_mnist")
    assert mlp.Settings().batch_size == 100 != RunSettings().batch_size
    assert describe(mlp.Settings, "batch_size") == describe(RunSettings, "batch_size")
    with pytest.raises(UserError, match="batch_size=0 must be positive"):
        mlp.Settings(batch_size=0)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_config_is_a_pure_function_of_the_overrides(name):
    experiment = load(name)
    default = experiment.config()
    assert default.experiment == experiment.NAME == name
    assert default == experiment.config(**dataclasses.asdict(experiment.Settings()))
    assert experiment.config(seed=3) == dataclasses.replace(default, seed=3)
    assert experiment.config(num_examples=50).data.num_examples == 50
    with pytest.raises(TypeError, match="no_such_setting"):
        experiment.config(no_such_setting=1)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_takes_every_objective(name):
    experiment = load(name)
    default = experiment.config()
    assert default.loss.objective == "bce" and default.d_steps_per_g_step == 1
    for loss in ("least_squares", "hinge"):
        config = experiment.config(loss=loss)
        assert config.loss.objective == loss and config.d_steps_per_g_step == 1
        assert config.d_update == default.d_update  # the document's update, other losses
    wgan = experiment.config(loss="wgan", clip_value=0.05)
    assert (wgan.loss.clip_value, wgan.d_steps_per_g_step) == (0.05, 5)
    gp = experiment.config(loss="wgan_gp", n_critic=3)
    assert (gp.loss.gp_weight, gp.d_steps_per_g_step, gp.d_update) == (10.0, 3, "joint")
    assert experiment.config(n_critic=2).d_steps_per_g_step == 2


def test_the_camel_gan_takes_mnist():
    camel = load("quickdraw_camel")
    assert camel.config().data.name == "quickdraw_camel"
    mnist = camel.config(dataset="mnist")
    assert mnist.data.name == "mnist" and mnist.data.scaling == "minus_one_one"
    assert mnist.data.sampling == "with_replacement"  # the book's np.random.randint batches


def test_a_wgan_alone_brings_its_papers_optimizer():
    gaussian = load("gaussian_2d")
    wgan = run_config(gaussian, gaussian.Settings(loss="wgan"))
    assert wgan.g_optimizer == wgan.d_optimizer == PAPER_OPTIMIZERS["wgan"]
    assert wgan.d_optimizer.name == "rmsprop" and wgan.d_optimizer.learning_rate == 5e-5
    gp = run_config(gaussian, gaussian.Settings(loss="wgan_gp"))
    assert (gp.d_optimizer.name, gp.d_optimizer.b1, gp.d_optimizer.b2) == ("adam", 0.0, 0.9)
    # An optimizer setting given with it keeps the experiment's optimizers.
    chosen = run_config(gaussian, gaussian.Settings(loss="wgan", lr_d=0.01))
    assert chosen.d_optimizer.name == "adam" and chosen.d_optimizer.learning_rate == 0.01
    hinge = run_config(gaussian, gaussian.Settings(loss="hinge"))
    assert hinge.d_optimizer == gaussian.config().d_optimizer


def test_two_experiments_build_in_one_process():
    gaussian = load("gaussian_2d").config(lr_d=0.1, d_hidden=(4, 4))
    camel = load("quickdraw_camel").config(lr_d=0.001)
    assert gaussian.d_optimizer.learning_rate == 0.1
    assert gaussian.discriminator.kwargs["hidden_sizes"] == [4, 4]
    assert camel.d_optimizer.learning_rate == 0.001
    assert camel.g_optimizer.name == "rmsprop"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_flags_default_to_the_settings(name):
    experiment = load(name)
    registry = flags.FlagValues()
    holders = command.define_flags(experiment.Settings, registry)
    registry(["prog"])
    assert command.parsed_settings(experiment.Settings, holders) == experiment.Settings()


def test_flags_parse_every_kind_of_setting():
    gaussian = load("gaussian_2d")
    registry = flags.FlagValues()
    holders = command.define_flags(gaussian.Settings, registry)
    registry(["prog", "--d_hidden=4,2,1", "--lr_d=0.1", "--init_scheme=torch", "--num_examples=40"])
    settings = command.parsed_settings(gaussian.Settings, holders)
    assert settings.d_hidden == (4, 2, 1)
    assert settings.lr_d == 0.1
    assert settings.init_scheme == "torch"
    assert settings.num_examples == 40
    assert gaussian.config(**dataclasses.asdict(settings)).discriminator.kwargs["hidden_sizes"] == [
        4,
        2,
        1,
    ]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("--d_hidden=4,x", "--d_hidden takes comma-separated integers"),
        ("--d_hidden=4,0", "--d_hidden must hold positive widths"),
        ("--lr_d=-1", "--lr_d must be positive"),
        ("--batch_size=0", "--batch_size must be positive"),
        ("--init_scheme=zeros", "value should be one of"),
    ],
)
def test_bad_flags_are_refused_by_the_parser(argument, message):
    registry = flags.FlagValues()
    command.define_flags(load("gaussian_2d").Settings, registry)
    with pytest.raises(flags.Error, match=message):
        registry(["prog", argument])


def test_run_settings_default_to_the_config_defaults():
    config_defaults = {f.name: f.default for f in dataclasses.fields(Config)}
    data_defaults = {f.name: f.default for f in dataclasses.fields(DataConfig)}
    settings = RunSettings()
    assert settings.run_fields() == {k: config_defaults[k] for k in settings.run_fields()}
    assert settings.data_fields() == {k: data_defaults[k] for k in settings.data_fields()}
