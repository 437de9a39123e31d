"""Orbax checkpoints: round trip, keep-last-k, step selection, fallback past a corrupt step."""

import dataclasses
import os
import shutil

import jax
import numpy as np
import pytest
from states import assert_states_equal
from testing_configs import gaussian_config

from gan_jax.checkpoint import Checkpoints, NoCheckpointError, restore_gan
from gan_jax.state import build_gan, create_state
from gan_jax.train import train_and_evaluate
from gan_jax.workdir import checkpoints_dir

DATA = os.path.join(os.path.dirname(__file__), "data")


def test_round_trip_restores_params_optimizer_state_step_and_key(tmp_path):
    config = gaussian_config()
    gan = build_gan(config)
    state = create_state(gan, 3).replace(step=np.int32(42))
    with Checkpoints(str(tmp_path)) as checkpoints:
        checkpoints.save(42, state, config)
    with Checkpoints(str(tmp_path)) as checkpoints:
        assert checkpoints.latest_step() == 42
        restored = checkpoints.restore_latest().state
        assert checkpoints.restore_config(42) == config
    assert_states_equal(restored, state)
    # The restored optimizer state is the optax structure, not plain dicts.
    assert type(restored.discriminator.opt_state) is type(state.discriminator.opt_state)


def test_a_restored_state_compiles_to_the_program_of_a_fresh_one(tmp_path):
    """Restored arrays are uncommitted, as fresh ones are: a resumed run's step lowers to
    the same program, so it finds the fresh run's compiled step in the cache."""
    config = gaussian_config()
    state = create_state(build_gan(config), 3)
    with Checkpoints(str(tmp_path)) as checkpoints:
        checkpoints.save(0, state, config)
    with Checkpoints(str(tmp_path)) as checkpoints:
        restored = checkpoints.restore_latest().state
    assert not any(leaf.committed for leaf in jax.tree.leaves(restored))
    step = jax.jit(lambda s: s.replace(step=s.step + 1))
    assert step.lower(restored).as_text() == step.lower(state).as_text()


def test_keeps_last_k_and_restores_a_given_step(tmp_path):
    config = gaussian_config()
    gan = build_gan(config)
    states = {s: create_state(gan, s) for s in (10, 20, 30)}
    with Checkpoints(str(tmp_path), max_to_keep=2) as checkpoints:
        for step, state in states.items():
            checkpoints.save(step, state, config)
    with Checkpoints(str(tmp_path), max_to_keep=2) as checkpoints:
        assert checkpoints.all_steps() == [20, 30]
        assert_states_equal(checkpoints.restore_latest(step=20).state, states[20])
        with pytest.raises(NoCheckpointError, match="step 10"):
            checkpoints.restore_latest(step=10)


def test_a_reader_whose_steps_a_writer_prunes_lists_again(tmp_path, caplog):
    """A reader lists the steps, a writer beside it saves newer ones and prunes those:
    they are not damaged, and `restore_gan` finds the newer ones."""
    config = gaussian_config()
    gan = build_gan(config)
    directory = checkpoints_dir(tmp_path)
    states = {s: create_state(gan, s) for s in (10, 20, 30, 40)}
    with Checkpoints(directory, max_to_keep=2, asynchronous=False) as writer:
        writer.save(10, states[10], config)
        writer.save(20, states[20], config)
        with Checkpoints(directory, read_only=True) as reader:
            assert reader.all_steps() == [10, 20]
            writer.save(30, states[30], config)
            writer.save(40, states[40], config)  # 10 and 20 are gone
            with pytest.raises(FileNotFoundError, match=r"steps \[10, 20\] were pruned"):
                reader.restore_latest()
    assert "damaged" not in caplog.text
    _, state, step = restore_gan(str(tmp_path))
    assert step == 40
    assert_states_equal(state, states[40])


def test_latest_falls_back_past_an_unreadable_step(tmp_path):
    config = gaussian_config()
    gan = build_gan(config)
    with Checkpoints(str(tmp_path)) as checkpoints:
        checkpoints.save(1, create_state(gan, 1), config)
        checkpoints.save(2, create_state(gan, 2), config)
    shutil.rmtree(os.path.join(tmp_path, "2", "state"))
    with Checkpoints(str(tmp_path)) as checkpoints:
        assert_states_equal(checkpoints.restore_latest().state, create_state(gan, 1))


def test_restore_gan_needs_a_checkpoint(tmp_path):
    with pytest.raises(NoCheckpointError):
        restore_gan(str(tmp_path))


def test_a_step_pruned_while_a_reader_lists_them_is_listed_again(tmp_path, monkeypatch):
    # A writer's max_to_keep deletes an old step while Orbax stats the steps it listed:
    # the reader lists again instead of failing (seen in CI beside a training run).
    config = gaussian_config()
    gan = build_gan(config)
    with Checkpoints(checkpoints_dir(tmp_path)) as checkpoints:
        checkpoints.save(10, create_state(gan, 0), config)
    real_init, calls = Checkpoints.__init__, []

    def flaky_init(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise FileNotFoundError(2, "No such file or directory", "checkpoints/420")
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(Checkpoints, "__init__", flaky_init)
    _, state, step = restore_gan(str(tmp_path))
    assert step == 10 and len(calls) == 2
    assert_states_equal(state, create_state(gan, 0))


@pytest.mark.slow
def test_a_checkpoint_from_before_the_optional_state_parts_restores_and_resumes(tmp_path):
    # Written by gan_jax at 64a3195, before G's moving average was a field of the state:
    # two steps of the 2-D Gaussian GAN on 16 points (batch 8), checkpointed at step 2.
    workdir = str(tmp_path / "run")
    shutil.copytree(os.path.join(DATA, "gaussian_run_before_options"), workdir)
    gan, state, step = restore_gan(workdir)  # verified against the stored digest
    assert step == 2 and int(state.step) == 2 and state.generator_ema is None
    # Training on from it resumes (a damaged-looking step would be moved aside instead).
    config = dataclasses.replace(gan.config, num_epochs=2)
    resumed = train_and_evaluate(config, workdir)
    assert int(resumed.step) == 4
    assert sorted(os.listdir(checkpoints_dir(workdir))) == ["2", "4"]
