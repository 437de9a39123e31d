"""XLA's persistent compilation cache: on by default in the user's cache folder, movable
and switchable off with `--compilation_cache`, and never a change in results."""

import os
import subprocess

import jax
import pytest
from cli_runs import GAUSSIAN, command
from states import assert_states_equal

from gan_jax import user_cache
from gan_jax.checkpoint import restore_gan

TINY_RUN = ["--num_points=64", "--batch_size=32", "--num_epochs=1"]


def _train(workdir, env):
    result = subprocess.run(
        command(GAUSSIAN, f"--workdir={workdir}", *TINY_RUN),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_the_default_cache_is_in_the_users_cache_folder_and_changes_no_result(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache_home")
    cache = tmp_path / "cache_home" / "gan_jax" / "xla"
    _train(tmp_path / "first", env)  # compiles and fills the cache
    kept = sorted(os.listdir(cache))
    assert any(name.startswith("jit_run_on_device") for name in kept), kept  # the loop
    _train(tmp_path / "second", env)  # from the cache
    assert sorted(os.listdir(cache)) == kept  # nothing compiled anew
    first, second = (restore_gan(str(tmp_path / run))[1] for run in ("first", "second"))
    assert_states_equal(first, second)


def test_an_empty_folder_turns_the_cache_off_and_a_folder_turns_it_on(tmp_path):
    before = (jax.config.jax_compilation_cache_dir, jax.config.jax_enable_compilation_cache)
    try:
        user_cache.use_compilation_cache("")
        assert not jax.config.jax_enable_compilation_cache
        assert jax.config.jax_compilation_cache_dir is None
        user_cache.use_compilation_cache(str(tmp_path))
        assert jax.config.jax_enable_compilation_cache
        assert jax.config.jax_compilation_cache_dir == str(tmp_path)
    finally:
        jax.config.update("jax_compilation_cache_dir", before[0])
        jax.config.update("jax_enable_compilation_cache", before[1])
