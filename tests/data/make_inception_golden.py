"""Records pytorch-fid's outputs, so tests can check gan_jax's Inception without torch.

Run by hand, from the repository root, in a virtual environment holding torch,
torchvision, pytorch-fid 0.3.0 and gan_jax (`pip install -e .`); nothing is downloaded:

    /work/torchref/bin/python tests/data/make_inception_golden.py

(the environment the committed files were made in: torch 2.14.1, torchvision 0.29.1,
pytorch-fid 0.3.0, NumPy 2.4.6). It writes, beside this file:

* `inception_golden.npz`: pytorch-fid's `InceptionV3(output_blocks=[3], resize_input=True,
  normalize_input=True, use_fid_inception=True)` built on `random_state_dict(WEIGHTS_SEED)`
  (its weight download is replaced by those arrays), run on `golden_images()`: its pool3
  `features` and the `logits` of the underlying torchvision model's fc on them;
  `F.interpolate(mode='bilinear', align_corners=False)` of `resize_inputs()`; and
  `pytorch_fid.fid_score.calculate_frechet_distance` on the statistics of
  `fid_feature_sets()`, computed as pytorch-fid computes them (`np.mean`, `np.cov`).
* `torch_state_dict_zip.pt` and `torch_state_dict_legacy.pt`: `torch_file_arrays()` saved
  by `torch.save` in its zip format and in its legacy (pre-1.6) format, with tensors that
  share a storage at offsets and strides.

tests/metrics_inception_test.py imports the functions below to rebuild the same inputs.
"""

import os

import numpy as np

from gan_jax.metrics.inception import random_state_dict

WEIGHTS_SEED = 0
# (seed, shape) of each group of images: small and grayscale ones are enlarged to 299x299,
# the 320x320 ones shrunk (where an antialiasing resize would differ from torch's).
IMAGE_GROUPS = ((1, (4, 64, 64, 3)), (2, (2, 28, 28, 1)), (3, (2, 320, 320, 3)))
# (seed, NHWC input shape, output size) of each direct check of the bilinear resize: each
# axis enlarged or shrunk, by factors that are not whole numbers.
RESIZE_CASES = ((6, (2, 7, 9, 3), (13, 5)), (7, (1, 11, 10, 1), (4, 17)))
FID_SEED = 4
FID_NUM_SAMPLES = 200
FID_DIM = 64

_HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN_PATH = os.path.join(_HERE, "inception_golden.npz")
ZIP_PATH = os.path.join(_HERE, "torch_state_dict_zip.pt")
LEGACY_PATH = os.path.join(_HERE, "torch_state_dict_legacy.pt")


def golden_images() -> list[np.ndarray]:
    """The float32 NHWC image groups of `IMAGE_GROUPS`, uniform in [0, 1]."""
    return [
        np.random.default_rng(seed).random(shape, dtype=np.float32) for seed, shape in IMAGE_GROUPS
    ]


def resize_inputs() -> list[np.ndarray]:
    """The float32 NHWC inputs of `RESIZE_CASES`, uniform in [0, 1]."""
    return [
        np.random.default_rng(seed).random(shape, dtype=np.float32)
        for seed, shape, _ in RESIZE_CASES
    ]


def fid_feature_sets() -> tuple[np.ndarray, np.ndarray]:
    """Two float32 (200, 64) feature sets with full, different, non-diagonal covariances and
    different means: the well-conditioned case, where pytorch-fid's `sqrtm` is accurate."""
    rng = np.random.default_rng(FID_SEED)
    sets = []
    for shift in (0.0, 0.5):
        mixing = rng.standard_normal((FID_DIM, FID_DIM)) / np.sqrt(FID_DIM)
        mean = shift * rng.standard_normal(FID_DIM)
        sets.append(rng.standard_normal((FID_NUM_SAMPLES, FID_DIM)) @ mixing + mean)
    return sets[0].astype(np.float32), sets[1].astype(np.float32)


def torch_file_arrays() -> dict[str, np.ndarray]:
    """What the two torch files hold: a small conv + BatchNorm module's state dict (with
    its `num_batches_tracked`), a matrix and three views of its storage (transposed, one
    column, every other row), and tensors of other dtypes."""
    rng = np.random.default_rng(5)
    matrix = rng.standard_normal((6, 5)).astype(np.float32)
    return {
        "0.weight": rng.standard_normal((3, 2, 3, 3)).astype(np.float32),
        "1.weight": rng.uniform(0.5, 1.5, 3).astype(np.float32),
        "1.bias": rng.standard_normal(3).astype(np.float32),
        "1.running_mean": rng.standard_normal(3).astype(np.float32),
        "1.running_var": rng.uniform(0.5, 1.5, 3).astype(np.float32),
        "1.num_batches_tracked": np.array(7, np.int64),
        "matrix": matrix,
        "transposed": matrix.T,
        "column": matrix[:, 2],
        "odd_rows": matrix[1::2],
        "float64": rng.standard_normal((2, 3)),
        "float16": rng.standard_normal(4).astype(np.float16),
        "int64": np.arange(-3, 3, dtype=np.int64).reshape(2, 3),
        "bool": np.array([True, False, True]),
    }


def _write_torch_files() -> None:
    import torch

    arrays = torch_file_arrays()
    module = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, bias=False), torch.nn.BatchNorm2d(3))
    module.load_state_dict({k: torch.from_numpy(arrays[k]) for k in module.state_dict()})
    state_dict = module.state_dict()  # An OrderedDict with `_metadata`, as modules save.
    matrix = torch.from_numpy(arrays["matrix"].copy())
    state_dict.update(
        matrix=matrix, transposed=matrix.t(), column=matrix[:, 2], odd_rows=matrix[1::2]
    )
    for key in ("float64", "float16", "int64", "bool"):
        state_dict[key] = torch.from_numpy(arrays[key])
    assert not state_dict["transposed"].is_contiguous()
    assert state_dict["column"].storage_offset() == 2
    for key, value in state_dict.items():
        np.testing.assert_array_equal(value.numpy(), arrays[key])
    torch.save(state_dict, ZIP_PATH)
    torch.save(state_dict, LEGACY_PATH, _use_new_zipfile_serialization=False)


def main() -> None:
    import pytorch_fid
    import pytorch_fid.fid_score
    import pytorch_fid.inception
    import torch
    import torch.nn.functional as F
    import torchvision

    torch.set_num_threads(2)
    weights = {k: torch.from_numpy(v) for k, v in random_state_dict(WEIGHTS_SEED).items()}

    def no_download(url, **kwargs):
        del kwargs
        print(f"not downloading {url}: using random_state_dict({WEIGHTS_SEED})")
        return weights

    # Keep a handle on the torchvision model under pytorch-fid's wrapper, for its fc.
    built = []
    build = pytorch_fid.inception.fid_inception_v3

    def fid_inception_v3():
        built.append(build())
        return built[-1]

    pytorch_fid.inception.load_state_dict_from_url = no_download
    pytorch_fid.inception.fid_inception_v3 = fid_inception_v3
    model = pytorch_fid.inception.InceptionV3(
        output_blocks=[3], resize_input=True, normalize_input=True, use_fid_inception=True
    ).eval()
    (inception,) = built
    inception.eval()

    features, logits = [], []
    with torch.no_grad():
        for images in golden_images():
            x = torch.from_numpy(images).permute(0, 3, 1, 2)
            if x.shape[1] == 1:
                x = x.repeat(1, 3, 1, 1)  # pytorch-fid's loader converts to RGB this way.
            pool = model(x)[0].flatten(1)
            fc_logits = inception.fc(pool)
            # The whole torchvision forward on pytorch-fid's preprocessing gives the same.
            resized = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            direct = inception(2 * resized - 1)
            torch.testing.assert_close(direct, fc_logits, rtol=1e-5, atol=1e-5)
            features.append(pool.numpy())
            logits.append(fc_logits.numpy())
    features, logits = np.concatenate(features), np.concatenate(logits)

    resized = {}
    for i, (images, (_, _, size)) in enumerate(zip(resize_inputs(), RESIZE_CASES, strict=True)):
        x = torch.from_numpy(images).permute(0, 3, 1, 2)
        y = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        resized[f"resize_{i}"] = y.permute(0, 2, 3, 1).numpy()

    set1, set2 = fid_feature_sets()
    statistics = [(np.mean(s, axis=0), np.cov(s, rowvar=False)) for s in (set1, set2)]
    fid = pytorch_fid.fid_score.calculate_frechet_distance(*statistics[0], *statistics[1])
    num_parameters = sum(
        v.numel() for k, v in inception.state_dict().items() if "num_batches" not in k
    )
    versions = (
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"pytorch-fid {pytorch_fid.__version__}, numpy {np.__version__}"
    )
    np.savez(
        GOLDEN_PATH,
        features=features.astype(np.float32),
        logits=logits.astype(np.float32),
        weights_seed=WEIGHTS_SEED,
        image_groups=np.array([(seed, *shape) for seed, shape in IMAGE_GROUPS]),
        **resized,
        fid=np.float64(fid),
        fid_seed=FID_SEED,
        num_parameters=num_parameters,
        versions=versions,
    )
    _write_torch_files()
    print(versions)
    print(f"features {features.shape}: mean {features.mean():.3f}, max {features.max():.3f}")
    print(f"logits {logits.shape}: std {logits.std():.3f}; FID {fid!r}")
    print(f"{num_parameters} parameters; wrote {GOLDEN_PATH}, {ZIP_PATH}, {LEGACY_PATH}")


if __name__ == "__main__":
    main()
