"""The data set table: every set a config can name has an entry that matches its data."""

import importlib
import os
import pkgutil

import numpy as np
import pytest

import experiments
from gan_jax.config import DataConfig
from gan_jax.data import catalog, mnist, pokemon, quickdraw, source
from gan_jax.data.pipeline import load_training_data


def _experiment_configs():
    for module in pkgutil.iter_modules(experiments.__path__):
        experiment = importlib.import_module(f"experiments.{module.name}")
        if hasattr(experiment, "config"):
            yield module.name, experiment.config()


def test_every_experiment_names_a_set_of_the_table():
    configs = dict(_experiment_configs())
    assert len(configs) >= 7, sorted(configs)
    for name, config in configs.items():
        assert config.data.name in catalog.DATA_SETS, name


def test_any_other_name_is_a_prepared_image_set():
    assert catalog.kind_of("pokemon/sprites") is catalog.DATA_SETS["pokemon"]
    for name in ("my_sprites", "cifar10", "fashion_mnist/config", "gaussian_2d/config"):
        assert catalog.kind_of(name) is catalog.PREPARED_IMAGES, name
    prepared = catalog.PREPARED_IMAGES
    assert prepared.labelled is None and prepared.example_shape is None
    assert not prepared.drawn_from_seed


@pytest.mark.parametrize("name", [*catalog.DATA_SETS, "any_folder"])
def test_scores_follow_from_what_the_set_is(name):
    kind = catalog.kind_of(name)
    images = kind.example_shape is None or len(kind.example_shape) == 3
    assert (kind.scores >= catalog.IMAGE_SCORES) == images
    assert (catalog.CLASSIFIER in kind.scores) == (images and kind.labelled is not False)
    assert (catalog.GAUSSIAN_W2 in kind.scores) == (kind.example_shape == (2,))
    assert kind.num_classes is None or kind.labelled
    if name in catalog.DATA_SETS:  # drawn from the seed, or read from prepared variants
        assert kind.drawn_from_seed != bool(kind.variants)


def test_the_table_matches_the_builders(tmp_path):
    builders = {
        "mnist": [mnist.Mnist(data_dir=str(tmp_path))],
        "pokemon": [
            pokemon.Pokemon(data_dir=str(tmp_path), config="d2l"),
            pokemon.Pokemon(data_dir=str(tmp_path), config="sprites"),
            pokemon.Pokemon(data_dir=str(tmp_path), config="sprites", version="1.0.0"),
        ],
        "quickdraw_camel": [quickdraw.QuickdrawCamel(data_dir=str(tmp_path))],
    }
    assert set(builders) == set(source.VARIANTS)
    for name, built in builders.items():
        kind = catalog.DATA_SETS[name]
        assert kind.variants == tuple(os.path.relpath(b.data_dir, tmp_path) for b in built)
        features = [b.info.features for b in built]
        assert {f["image"].shape for f in features} == {kind.example_shape}, name
        labelled = {"label" in f for f in features}
        assert kind.labelled == (labelled.pop() if len(labelled) == 1 else None), name
        classes = {f["label"].num_classes for f in features if "label" in f}
        assert kind.num_classes == (classes.pop() if len(classes) == 1 else None), name


def test_the_gaussian_is_drawn_from_the_seed():
    kind = catalog.DATA_SETS["gaussian_2d"]
    config = DataConfig("gaussian_2d", scaling="none", kwargs={"num_examples": 50})
    first, again, other = (load_training_data(config, seed) for seed in (0, 0, 1))
    assert kind.drawn_from_seed and first.labels is None
    assert first.examples.shape == (50, *kind.example_shape)
    np.testing.assert_array_equal(first.examples, again.examples)
    assert not np.array_equal(first.examples, other.examples)
