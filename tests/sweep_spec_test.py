"""The --sweep language: values, ranges, random draws, member names and groups."""

import importlib

import pytest

from gan_jax.errors import UserError
from gan_jax.sweep_spec import groups, parse


def settings(name):
    return importlib.import_module(f"experiments.{name}").Settings


def test_grid_of_lists_and_ranges_in_written_order():
    members = parse("lr=1e-4,2e-4;seed=0:3", settings("mlp_gan_mnist_deep"))
    assert [m.overrides for m in members] == [
        {"lr": 1e-4, "seed": 0},
        {"lr": 1e-4, "seed": 1},
        {"lr": 1e-4, "seed": 2},
        {"lr": 2e-4, "seed": 0},
        {"lr": 2e-4, "seed": 1},
        {"lr": 2e-4, "seed": 2},
    ]
    assert members[4].name == "lr=0.0002_seed=1"


def test_items_mix_and_steps_count():
    (axis,) = {tuple(m.overrides["seed"] for m in parse("seed=0:6:2,10", settings("cgan_mnist")))}
    assert axis == (0, 2, 4, 10)


def test_random_draws_are_fixed_by_the_spec_and_within_bounds():
    spec = "lr=loguniform(1e-5,1e-2,8);b1=uniform(0,0.9,3)"
    first = parse(spec, settings("dcgan_pokemon"))
    assert [m.overrides for m in first] == [
        m.overrides for m in parse(spec, settings("dcgan_pokemon"))
    ]
    assert len(first) == 24
    lrs = sorted({m.overrides["lr"] for m in first})
    assert len(lrs) == 8 and lrs[0] >= 1e-5 and lrs[-1] <= 1e-2
    assert all(0 <= m.overrides["b1"] <= 0.9 for m in first)


def test_every_kind_of_setting():
    members = parse(
        "d_hidden=[5,3],[8];init_scheme=torch;num_examples=none,500;batch_size=8",
        settings("gaussian_2d"),
    )
    assert [m.overrides["d_hidden"] for m in members] == [(5, 3), (5, 3), (8,), (8,)]
    assert {m.overrides["num_examples"] for m in members} == {None, 500}
    assert members[0].name == "d_hidden=5-3_init_scheme=torch_num_examples=None_batch_size=8"
    shuffled = parse("shuffle=true,false", settings("cgan_mnist"))
    assert [m.overrides["shuffle"] for m in shuffled] == [True, False]
    datasets = parse("dataset=pokemon/d2l", settings("dcgan_pokemon"))
    assert datasets[0].name == "dataset=pokemon-d2l"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no settings to sweep"),
        ("lr", "expected name=values"),
        ("learning_rate=1e-3", "'learning_rate' is not a setting of this experiment"),
        ("lr=1e-3;lr=2e-3", "'lr' is swept twice"),
        ("lr=fast", "lr='fast'"),
        ("seed=5:5", "empty range"),
        ("seed=uniform(0,1,3)", "seed is not a float setting"),
        ("lr=loguniform(0,1,3)", "need count > 0 and 0 < low < high"),
        ("lr=loguniform(1e-3,1e-2)", "expected loguniform(low,high,count)"),
        ("lr=1e-3,1e-3", "repeated members"),
        ("g_loss=hinge", "not one of"),
        ("lr=(1e-3", "cannot read the values"),
    ],
)
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(spec, settings("mlp_gan_mnist_deep"))


def test_groups_split_only_on_what_the_compiled_program_depends_on():
    experiment = importlib.import_module("experiments.mlp_gan_mnist_deep")
    overrides = [
        {"seed": 0},
        {"seed": 1, "lr": 1e-3, "b1": 0.5, "b2": 0.99},
        {"seed": 0, "hidden_node": 128},  # another architecture
        {"seed": 2, "g_loss": "minimax"},  # another objective
        {"seed": 3, "hidden_node": 128, "lr": 5e-4},
    ]
    configs = [experiment.config(**o) for o in overrides]
    assert groups(configs) == [[0, 1], [2, 4], [3]]
    camel = importlib.import_module("experiments.quickdraw_camel")
    rmsprop = [camel.config(rho=0.9), camel.config(rho=0.95, rmsprop_eps=1e-6, lr_d=1e-3)]
    assert groups(rmsprop) == [[0, 1]]
