"""XLA's persistent compilation cache: on by default in the user's cache folder, movable
and switchable off with `--compilation_cache`, and never a change in results."""

import os
import subprocess

from cli_runs import GAUSSIAN, command
from states import assert_states_equal

from gan_jax.checkpoint import restore_gan

TINY_RUN = ["--num_points=64", "--batch_size=32", "--num_epochs=1"]


def _train(workdir, *flags, env=None):
    result = subprocess.run(
        command(GAUSSIAN, f"--workdir={workdir}", *TINY_RUN, *flags),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_default_cache_is_in_the_users_cache_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache_home")
    _train(tmp_path / "run", env=env)
    programs = os.listdir(tmp_path / "cache_home" / "gan_jax" / "xla")
    assert any(name.startswith("jit_run_on_device") for name in programs), programs  # the loop


def test_a_cached_start_trains_the_same_run_and_an_empty_flag_keeps_nothing(tmp_path):
    cache = tmp_path / "xla"
    _train(tmp_path / "first", f"--compilation_cache={cache}")
    kept = sorted(os.listdir(cache))
    assert kept
    _train(tmp_path / "second", f"--compilation_cache={cache}")  # from the cache
    assert sorted(os.listdir(cache)) == kept  # nothing compiled anew
    _train(tmp_path / "uncached", "--compilation_cache=")
    states = [restore_gan(str(tmp_path / run))[1] for run in ("first", "second", "uncached")]
    assert_states_equal(states[0], states[1])
    assert_states_equal(states[0], states[2])
