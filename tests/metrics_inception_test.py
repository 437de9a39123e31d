"""gan_jax.metrics.inception against pytorch-fid's recorded outputs, offline and without torch.

The reference values come from tests/data/make_inception_golden.py (run by hand where torch
and pytorch-fid are installed); this file rebuilds the same random weights and inputs from
the seeds stored beside them.
"""

import importlib.util
import io
import os
import pickle
import shutil
import urllib.error
import urllib.request

import numpy as np
import pytest
from flax import traverse_util

from gan_jax.data import fetch
from gan_jax.metrics import frechet, inception, torch_file

_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def _import_golden_script():
    spec = importlib.util.spec_from_file_location(
        "make_inception_golden", os.path.join(_DATA, "make_inception_golden.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


golden_script = _import_golden_script()


@pytest.fixture(scope="module")
def golden():
    with np.load(golden_script.GOLDEN_PATH) as f:
        return {key: f[key] for key in f.files}


@pytest.fixture(scope="module")
def state_dict(golden):
    return inception.random_state_dict(int(golden["weights_seed"]))


@pytest.fixture(scope="module")
def variables(state_dict):
    return inception.variables_from_state_dict(state_dict)


def _max_relative_difference(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))


def _one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


def test_layout_has_pytorch_fids_parameter_count(golden):
    layout = inception.state_dict_layout()
    assert sum(int(np.prod(shape)) for shape in layout.values()) == golden["num_parameters"]
    assert layout["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3)
    assert layout["Mixed_7c.branch_pool.bn.running_var"] == (192,)
    assert layout["fc.weight"] == (inception.INCEPTION_NUM_CLASSES, inception.INCEPTION_FEATURE_DIM)


@pytest.mark.slow
def test_features_and_logits_match_pytorch_fid(golden, variables):
    seeds_and_shapes = [
        (int(row[0]), tuple(int(n) for n in row[1:])) for row in golden["image_groups"]
    ]
    assert tuple(seeds_and_shapes) == golden_script.IMAGE_GROUPS
    # Each group resized on its own (a small program per size), the network compiled once.
    resized = [inception.resize_for_inception(images) for images in golden_script.golden_images()]
    features, logits = inception.inception_outputs(variables, np.concatenate(resized))
    assert features.shape == (8, inception.INCEPTION_FEATURE_DIM)
    assert logits.shape == (8, inception.INCEPTION_NUM_CLASSES)
    # Measured on 2 CPU cores (XLA against torch 2.14.1's CPU kernels): 9.1e-7 (features)
    # and 8.0e-7 (logits), float32 rounding through 94 convolutions. 1e-4 leaves room for
    # other CPUs and GPUs; real mistakes are far above it: counting the padding in the
    # pool branches' means gives 7.0e-2 (features), shrinking the 320x320 images with
    # `jax.image.resize`'s antialiasing 8.3e-2.
    assert _max_relative_difference(np.asarray(features), golden["features"]) < 1e-4
    assert _max_relative_difference(np.asarray(logits), golden["logits"]) < 1e-4


def test_resize_matches_torch_interpolate_when_enlarging_and_shrinking(golden):
    for i, images in enumerate(golden_script.resize_inputs()):
        _, _, (height, width) = golden_script.RESIZE_CASES[i]
        ours = np.asarray(inception.resize_bilinear(images, height, width))
        reference = golden[f"resize_{i}"]
        assert ours.shape == reference.shape
        # Measured 5.0e-7 and 1.4e-7 (a few float32 ulps: torch mixes the four pixels in one
        # pass, this in one pass per axis); `jax.image.resize`'s default, antialiased when
        # shrinking, is 3.3e-1 off.
        assert _max_relative_difference(ours, reference) < 1e-5


def test_resize_to_the_same_size_is_exact():
    images = np.random.default_rng(0).random((1, 299, 299, 3), dtype=np.float32)
    np.testing.assert_array_equal(inception.resize_for_inception(images), images)


def test_frechet_distance_matches_pytorch_fid(golden):
    assert int(golden["fid_seed"]) == golden_script.FID_SEED
    set1, set2 = golden_script.fid_feature_sets()
    ours = frechet.frechet_distance(
        *frechet.feature_statistics(set1), *frechet.feature_statistics(set2)
    )
    # Measured 7.4e-9 relative (pytorch-fid's `scipy.linalg.sqrtm` against `eigh`).
    assert ours == pytest.approx(float(golden["fid"]), rel=1e-6)


@pytest.mark.parametrize("name", ["torch_state_dict_zip.pt", "torch_state_dict_legacy.pt"])
def test_reads_torch_files_without_torch(name):
    expected = golden_script.torch_file_arrays()
    state_dict = torch_file.read_torch_state_dict(os.path.join(_DATA, name))
    assert list(state_dict) == list(expected)
    for key, array in expected.items():
        assert state_dict[key].dtype == array.dtype, key
        np.testing.assert_array_equal(state_dict[key], array, err_msg=key)
    # Views of one storage stay views of it, with their offsets and strides.
    assert np.shares_memory(state_dict["transposed"], state_dict["matrix"])
    assert np.shares_memory(state_dict["column"], state_dict["matrix"])


def test_refuses_to_unpickle_anything_but_tensors(tmp_path):
    path = tmp_path / "evil.pt"
    # A legacy-format header, then a pickle whose load would call os.system.
    header = [0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}]
    path.write_bytes(b"".join(pickle.dumps(x) for x in header) + pickle.dumps(os.system))
    with pytest.raises(torch_file.TorchFileError) as excinfo:
        torch_file.read_torch_state_dict(str(path))
    assert "refusing to load" in _one_line_error(excinfo)
    path.write_bytes(b"not a torch file")
    with pytest.raises(torch_file.TorchFileError):
        torch_file.read_torch_state_dict(str(path))


def _mis_shaped(state_dict):
    state_dict["Mixed_6b.branch7x7_2.conv.weight"] = np.zeros((128, 128, 7, 1), np.float32)


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda sd: sd.pop("fc.bias"), "missing fc.bias"),
        (lambda sd: sd.update({"AuxLogits.fc.bias": np.zeros(1008)}), "unexpected AuxLogits"),
        (_mis_shaped, "wrong shape Mixed_6b.branch7x7_2.conv.weight (128, 128, 7, 1)"),
    ],
)
def test_converter_refuses_a_missing_extra_or_mis_shaped_entry(state_dict, damage, words):
    damaged = dict(state_dict)
    damage(damaged)
    with pytest.raises(inception.InceptionWeightsError) as excinfo:
        inception.variables_from_state_dict(damaged)
    assert words in _one_line_error(excinfo)


def test_converter_ignores_num_batches_tracked_and_transposes(state_dict, variables):
    with_counts = {**state_dict, "Conv2d_1a_3x3.bn.num_batches_tracked": np.array(0)}
    converted = inception.variables_from_state_dict(with_counts)
    kernel = converted["params"]["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"]
    np.testing.assert_array_equal(
        kernel, state_dict["Mixed_6b.branch7x7_2.conv.weight"].transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(converted["params"]["fc"]["kernel"], state_dict["fc.weight"].T)
    assert converted["batch_stats"]["Mixed_7c"]["branch_pool"]["bn"]["var"].shape == (192,)


@pytest.fixture
def no_weights_anywhere(tmp_path, monkeypatch):
    """An empty user cache, no environment variable, and no network (a download fails)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(inception.WEIGHTS_ENV_VAR, raising=False)
    monkeypatch.setattr(fetch, "url_is_reachable", lambda url, timeout_s=5.0: False)

    def no_download(*args, **kwargs):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(urllib.request, "urlopen", no_download)
    return tmp_path


def test_no_weights_is_a_one_line_error_naming_both_ways_and_the_url(no_weights_anywhere):
    with pytest.raises(inception.NoInceptionWeightsError) as excinfo:
        inception.load_inception_variables()
    message = _one_line_error(excinfo)
    for words in (
        "--inception_weights=PATH",
        "GAN_JAX_INCEPTION_WEIGHTS",
        inception.FID_WEIGHTS_URL,
    ):
        assert words in message
    with pytest.raises(inception.NoInceptionWeightsError) as excinfo:
        inception.load_inception_variables(str(no_weights_anywhere / "missing.pth"))
    assert "missing.pth" in _one_line_error(excinfo)


def _assert_same_variables(a, b):
    flat_a, flat_b = (traverse_util.flatten_dict(v) for v in (a, b))
    assert flat_a.keys() == flat_b.keys()
    for key in flat_a:
        np.testing.assert_array_equal(flat_a[key], flat_b[key])


def test_finds_weights_by_path_environment_variable_and_cache(
    no_weights_anywhere, monkeypatch, state_dict, variables
):
    # A state dict saved as NumPy arrays, given by path and through the variable.
    path = str(no_weights_anywhere / "state_dict.npz")
    np.savez(path, **state_dict)
    _assert_same_variables(inception.load_inception_variables(path), variables)
    monkeypatch.setenv(inception.WEIGHTS_ENV_VAR, path)
    _assert_same_variables(inception.load_inception_variables(), variables)
    monkeypatch.delenv(inception.WEIGHTS_ENV_VAR)
    # The converted copy in the cache is found with no path at all.
    cached = os.path.join(inception.default_weights_dir(), inception._CONVERTED_FILE)
    inception._save_converted(cached, variables)
    assert os.listdir(inception.default_weights_dir()) == [inception._CONVERTED_FILE]
    _assert_same_variables(inception.load_inception_variables(), variables)


def test_refuses_a_torch_file_that_is_not_the_fid_inception(no_weights_anywhere):
    # Named as pytorch-fid's file but with other contents: refused by its SHA-256 prefix.
    impostor = str(no_weights_anywhere / inception.FID_WEIGHTS_FILE)
    shutil.copy(os.path.join(_DATA, "torch_state_dict_zip.pt"), impostor)
    with pytest.raises(inception.InceptionWeightsError) as excinfo:
        inception.load_inception_variables(impostor)
    assert "SHA-256" in _one_line_error(excinfo)
    # Under another name it is read, and refused for its contents.
    other = os.path.join(_DATA, "torch_state_dict_zip.pt")
    with pytest.raises(inception.InceptionWeightsError) as excinfo:
        inception.load_inception_variables(other)
    assert "missing Conv2d_1a_3x3" in _one_line_error(excinfo)
    assert not os.path.exists(inception.default_weights_dir())


def test_a_fetched_file_is_checked_and_the_download_removed(no_weights_anywhere, monkeypatch):
    with open(os.path.join(_DATA, "torch_state_dict_zip.pt"), "rb") as f:
        wrong_file = f.read()
    monkeypatch.setattr(fetch, "url_is_reachable", lambda url, timeout_s=5.0: True)
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(wrong_file))
    with pytest.raises(inception.InceptionWeightsError) as excinfo:
        inception.load_inception_variables()
    assert "SHA-256" in _one_line_error(excinfo)
    assert os.listdir(inception.default_weights_dir()) == []

    def unreachable(url, timeout):
        raise urllib.error.URLError("connection reset")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    with pytest.raises(inception.NoInceptionWeightsError) as excinfo:
        inception.load_inception_variables()
    assert inception.WEIGHTS_ENV_VAR in _one_line_error(excinfo)
    assert os.listdir(inception.default_weights_dir()) == []
