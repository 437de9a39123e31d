"""`prepare image_folder` on folders the tests generate, and `source.load` of any prepared set.

Every folder is a few tiny images of plain colours, so a fitted pixel can be checked
exactly; decoding runs in this process (num_workers=1).
"""

import io
import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from cli_runs import assert_one_line_error
from cli_runs import prepare as prepare_cli
from PIL import Image, features

from gan_jax.data import fetch, image_files, image_folder, source
from gan_jax.data.image_files import FitOptions

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
YELLOW, CYAN, MAGENTA, ORANGE = (255, 255, 0), (0, 255, 255), (255, 0, 255), (255, 128, 0)
HAS_WEBP = features.check("webp")


def _encode(image: Image.Image, image_format: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **kwargs)
    return buffer.getvalue()


def _two_colours(size: tuple[int, int], left=RED, right=BLUE) -> Image.Image:
    """Left half one colour, right half another: shows where a fit put the image."""
    image = Image.new("RGB", size, right)
    image.paste(left, (0, 0, size[0] // 2, size[1]))
    return image


def _half_transparent_png() -> bytes:
    """30x20: the left half fully transparent red, the right half opaque blue."""
    image = Image.new("RGBA", (30, 20), (*BLUE, 255))
    image.paste((*RED, 0), (0, 0, 15, 20))
    return _encode(image, "PNG")


def _two_frame_gif() -> bytes:
    frames = [Image.new("RGB", (24, 16), colour) for colour in (YELLOW, CYAN)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def _truncated_png() -> bytes:
    noise = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(noise), "PNG")
    return data[: len(data) // 2]


def _write(path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory) -> str:
    """Every format, a nested folder, and each kind of file that is skipped or dropped.

    Read order: a_rgba, b.jpg, c.gif, d.bmp, [e.webp], (empty, notes, truncated skipped),
    then nested/dup.png (a duplicate of d.bmp) and nested/f.png.
    """
    root = tmp_path_factory.mktemp("mixed")
    _write(root / "a_rgba.png", _half_transparent_png())
    _write(root / "b.jpg", _encode(Image.new("RGB", (50, 30), GREEN), "JPEG", quality=95))
    _write(root / "c.gif", _two_frame_gif())
    magenta = Image.new("RGB", (20, 20), MAGENTA)
    _write(root / "d.bmp", _encode(magenta, "BMP"))
    if HAS_WEBP:
        _write(root / "e.webp", _encode(Image.new("RGB", (16, 24), ORANGE), "WEBP", lossless=True))
    _write(root / "empty.png", b"")
    _write(root / "notes.txt", b"not an image")
    _write(root / "truncated.png", _truncated_png())
    _write(root / ".hidden.png", _encode(magenta, "PNG"))  # Not read, not counted.
    _write(root / "nested" / "dup.png", _encode(magenta, "PNG"))  # Same pixels as d.bmp.
    _write(root / "nested" / "f.png", _encode(Image.new("L", (12, 12), 128), "PNG"))
    return str(root)


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory) -> str:
    """Class subfolders (one nested, one whose only file is broken) and a README at the top."""
    root = tmp_path_factory.mktemp("classes")
    red = _encode(Image.new("RGB", (8, 8), RED), "PNG")
    _write(root / "zebra" / "1.png", _encode(Image.new("RGB", (8, 8), BLUE), "PNG"))
    _write(root / "zebra" / "red.png", red)  # Also in apple: kept, it is another class.
    _write(root / "zebra" / "red_copy.png", red)  # A duplicate within zebra.
    _write(root / "apple" / "y.png", _encode(Image.new("RGB", (8, 8), GREEN), "PNG"))
    _write(root / "apple" / "deep" / "red.png", red)
    _write(root / "broken" / "x.png", _truncated_png())  # No usable image: no class.
    _write(root / "README.md", b"# my pictures")
    return str(root)


def _expected_mixed_kept(frames: str) -> int:
    # a, b, c (1 or 2 frames), d, [e], f; nested/dup.png is d.bmp again.
    return 5 + (frames == "all") + HAS_WEBP


SKIPPED = {"empty": 1, "not an image": 1, "unreadable": 1}


def test_mixed_folder_counts_shapes_and_white_flattening(tmp_path, mixed_folder):
    report = image_folder.prepare(str(tmp_path), path=mixed_folder, name="mixed", num_workers=1)
    assert report.kept == _expected_mixed_kept("first")
    assert (report.duplicates, report.skipped, report.class_names) == (1, SKIPPED, [])
    data = source.load("mixed", data_dir=str(tmp_path))
    assert data.labels is None
    assert data.images.shape == (report.kept, 64, 64, 3) and data.images.dtype == np.uint8
    first = data.images[0]  # a_rgba.png: 30x20, padded with 5 white rows above and below.
    assert tuple(first[32, 16]) == WHITE  # The transparent red half, flattened on white.
    assert tuple(first[32, 48]) == BLUE
    assert tuple(first[2, 48]) == WHITE  # Padding.
    assert tuple(data.images[2][32, 32]) == YELLOW  # The GIF's first frame.
    assert tuple(data.images[3][32, 32]) == MAGENTA
    assert tuple(data.images[-1][32, 32]) == (128, 128, 128)  # Grayscale in, RGB out.


def test_class_subfolders_become_sorted_labels(tmp_path, class_folder):
    report = image_folder.prepare(str(tmp_path), path=class_folder, name="fruit", num_workers=1)
    assert report.class_names == ["apple", "zebra"]
    assert report.skipped == {"unreadable": 1, image_folder.OUTSIDE_CLASSES: 1}
    assert (report.kept, report.duplicates) == (4, 1)
    data = source.load("fruit", data_dir=str(tmp_path))
    # apple: y.png then deep/red.png; zebra: 1.png, red.png (red_copy.png dropped).
    assert data.labels.tolist() == [0, 0, 1, 1] and data.labels.dtype == np.int32
    centres = [tuple(image[4, 4]) for image in data.images]
    assert centres == [GREEN, RED, BLUE, RED]
    # The class names are the label feature's names and in the metadata.
    written = tfds.builder_from_directory(image_folder.dataset_dir(str(tmp_path), "fruit"))
    assert written.info.features["label"].names == ["apple", "zebra"]
    assert written.info.metadata["class_names"] == ["apple", "zebra"]
    assert written.info.metadata["source"] == class_folder


@pytest.mark.parametrize(
    ("fit", "corner", "left", "right"),
    [
        ("pad", WHITE, RED, BLUE),  # 40x20 in a white 40x40 square
        ("crop", RED, RED, BLUE),  # the centre 20x20: half red, half blue
        ("resize", RED, RED, BLUE),  # stretched
    ],
)
def test_each_fit(tmp_path, fit, corner, left, right):
    path = tmp_path / "wide.png"
    _write(path, _encode(_two_colours((40, 20)), "PNG"))
    (image,) = image_files.read_image_file(str(path), FitOptions(image_size=48, fit=fit))
    assert image.shape == (48, 48, 3)
    assert (tuple(image[1, 6]), tuple(image[24, 6]), tuple(image[24, 42])) == (corner, left, right)
    (gray,) = image_files.read_image_file(str(path), FitOptions(16, channels=1, fit=fit))
    assert gray.shape == (16, 16, 1) and gray[8, 2, 0] == 76  # ITU-R 601 luma of red


def test_frames_transparency_bit_depth_and_orientation(tmp_path):
    gif = tmp_path / "anim.gif"
    _write(gif, _two_frame_gif())
    for frames, colours in (("first", [YELLOW]), ("all", [YELLOW, CYAN])):
        images = image_files.read_image_file(str(gif), FitOptions(8, frames=frames))
        assert [tuple(image[4, 4]) for image in images] == colours
    # A palette image whose index 0 is transparent black: white, not black.
    palette = Image.new("P", (10, 10), 0)
    palette.putpalette([0, 0, 0, *RED] + [0] * 762)
    palette.paste(1, (5, 0, 10, 10))
    _write(tmp_path / "p.png", _encode(palette, "PNG", transparency=0))
    (image,) = image_files.read_image_file(str(tmp_path / "p.png"), FitOptions(10))
    assert (tuple(image[5, 0]), tuple(image[5, 9])) == (WHITE, RED)
    # 16-bit grayscale: full scale is 255, not clipped.
    _write(
        tmp_path / "deep.png", _encode(Image.fromarray(np.full((4, 4), 32896, np.uint16)), "PNG")
    )
    (image,) = image_files.read_image_file(str(tmp_path / "deep.png"), FitOptions(4))
    assert tuple(image[0, 0]) == (128, 128, 128)
    # A wide JPEG marked "rotate 90": upright it is tall, so the padding is at the sides.
    exif = Image.Exif()
    exif[0x0112] = 6
    _write(tmp_path / "r.jpg", _encode(Image.new("RGB", (40, 20), RED), "JPEG", exif=exif))
    (image,) = image_files.read_image_file(str(tmp_path / "r.jpg"), FitOptions(32))
    assert tuple(image[16, 1]) == WHITE and image[1, 16].tolist() != list(WHITE)


def test_unusable_files_are_told_apart(tmp_path):
    for name, data in (("e.png", b""), ("t.txt", b"text"), ("cut.png", _truncated_png())):
        _write(tmp_path / name, data)
    reasons = [
        image_files.encode_file((str(tmp_path / name), FitOptions())).skipped
        for name in ("e.png", "t.txt", "cut.png", "missing.png")
    ]
    assert reasons == ["empty", "not an image", "unreadable", "unreadable"]


def test_a_name_is_not_overwritten_unless_asked(tmp_path, class_folder, mixed_folder):
    image_folder.prepare(str(tmp_path), path=class_folder, name="pics", num_workers=1)
    with pytest.raises(ValueError, match=r"'pics' is already prepared .* --overwrite"):
        image_folder.prepare(str(tmp_path), path=mixed_folder, name="pics", num_workers=1)
    assert len(source.load("pics", data_dir=str(tmp_path)).images) == 4
    image_folder.prepare(
        str(tmp_path), path=mixed_folder, name="pics", overwrite=True, num_workers=1
    )
    data = source.load("pics", data_dir=str(tmp_path))  # The old array cache went too.
    assert len(data.images) == _expected_mixed_kept("first") and data.labels is None


def test_bad_names_and_folders(tmp_path, class_folder):
    # gaussian_2d too: a folder of that name would never be read (the points are drawn).
    bad_names = (
        ("My-Set", "lowercase letters"),
        ("mnist", "built-in"),
        ("gaussian_2d", "built-in"),
    )
    for name, message in bad_names:
        with pytest.raises(ValueError, match=message):
            image_folder.prepare(str(tmp_path), path=class_folder, name=name)
    _write(tmp_path / "junk" / "a.txt", b"no")
    _write(tmp_path / "junk" / "b.png", b"")
    with pytest.raises(ValueError, match=r"no usable images .* 2 files skipped \(empty: 1"):
        image_folder.prepare(str(tmp_path), path=str(tmp_path / "junk"), name="junk")


def test_cli_prepares_and_prints_one_summary(tmp_path, mixed_folder):
    data_dir = tmp_path / "tfds"
    result = prepare_cli(
        "image_folder",
        f"--path={mixed_folder}",
        "--name=mixed_gray",
        "--image_size=32",
        "--channels=1",
        "--fit=crop",
        "--frames=all",
        "--num_workers=1",
        f"--data_dir={data_dir}",
    )
    assert result.returncode == 0, result.stderr
    kept = _expected_mixed_kept("all")
    assert result.stdout.strip().splitlines()[-1] == (
        f"mixed_gray: {kept} images (32, 32, 1) kept, 1 duplicate removed, 3 files skipped "
        "(empty: 1, not an image: 1, unreadable: 1), no labels; "
        f"train with --dataset=mixed_gray --data_dir={data_dir}"
    )
    images = source.load("mixed_gray", data_dir=str(data_dir)).images
    assert images.shape == (kept, 32, 32, 1)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "error: prepare: image_folder: {path} does not exist"),
        ("empty", "error: prepare: image_folder: no usable images in {path}: it holds no files"),
        ("unwritable", "error: prepare: image_folder: data dir {data_dir} is not writable"),
        ("no_name", "error: prepare: image_folder needs --path=DIR and --name=NAME"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, class_folder, case, message):
    path, data_dir = str(tmp_path / "empty_folder"), str(tmp_path / "tfds")
    os.makedirs(path)
    if case == "missing":
        path = str(tmp_path / "no_such_folder")
    elif case in ("unwritable", "no_name"):
        path = class_folder
    if case == "unwritable":  # Below a plain file: unwritable even for root.
        _write(tmp_path / "a_file", b"")
        data_dir = str(tmp_path / "a_file" / "tfds")
    args = [f"--path={path}", f"--data_dir={data_dir}"]
    if case != "no_name":
        args.append("--name=pictures")
    result = prepare_cli("image_folder", *args)
    assert_one_line_error(result, message.format(path=path, data_dir=data_dir))


def test_cli_choices_match_the_library():
    help_text = prepare_cli("--helpfull").stdout
    for flag, choices in (
        ("fit", image_files.FITS),
        ("frames", image_files.FRAMES),
        ("channels", tuple(str(c) for c in sorted(image_files.CHANNELS, reverse=True))),
    ):
        assert f"--{flag}: <{'|'.join(choices)}>" in help_text


# --- Any prepared TFDS image data set ----------------------------------------------------


class _FakeFaces(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A labelled 4x4 grayscale set; `value` shows which version was read."""

    name = "fake_faces"
    VERSION = tfds.core.Version("1.0.0")
    value = 10

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(4, 4, 1)),
                    "label": tfds.features.ClassLabel(names=["a", "b"]),
                }
            ),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(3), "test": self._generate_examples(2)}

    def _generate_examples(self, count: int):
        for index in range(count):
            image = np.full((4, 4, 1), self.value + index, np.uint8)
            yield index, {"image": fetch.encode_png(image), "label": index % 2}


class _NewerFakeFaces(_FakeFaces, skip_registration=True):
    name = "fake_faces"
    VERSION = tfds.core.Version("1.1.0")
    value = 100


class _FakeConfigs(_FakeFaces, skip_registration=True):
    name = "fake_configs"
    BUILDER_CONFIGS = [  # noqa: RUF012 (TFDS's attribute)
        tfds.core.BuilderConfig(name="small"),
        tfds.core.BuilderConfig(name="large"),
    ]


class _FakeSizes(_FakeFaces, skip_registration=True):
    """Images of two sizes: not one array."""

    name = "fake_sizes"

    def _info(self) -> tfds.core.DatasetInfo:
        features = {"image": tfds.features.Image(shape=(None, None, 1))}
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

    def _generate_examples(self, count: int):
        for index in range(count):
            yield index, {"image": fetch.encode_png(np.zeros((4 + index, 4, 1), np.uint8))}


def test_other_prepared_tfds_sets_load_by_name(tmp_path):
    data_dir = str(tmp_path)
    for builder in (
        _FakeFaces(data_dir=data_dir, file_format="array_record"),
        _NewerFakeFaces(data_dir=data_dir, file_format="array_record"),
        _FakeConfigs(data_dir=data_dir, config="small", file_format="array_record"),
        _FakeConfigs(data_dir=data_dir, config="large", file_format="array_record"),
        _FakeSizes(data_dir=data_dir, file_format="array_record"),
    ):
        builder.download_and_prepare()
    train = source.load("fake_faces", "train", data_dir)  # The newest version, 1.1.0.
    assert train.images.shape == (3, 4, 4, 1) and train.images.dtype == np.uint8
    assert train.images[:, 0, 0, 0].tolist() == [100, 101, 102]
    assert train.labels.tolist() == [0, 1, 0]
    assert len(source.load("fake_faces", "test", data_dir).images) == 2
    assert len(source.load("fake_configs/large", "train", data_dir).images) == 3
    with pytest.raises(ValueError, match=r"several prepared configs .* fake_configs/large"):
        source.load("fake_configs", "train", data_dir)
    with pytest.raises(ValueError, match=r"images differ in size .* image_folder"):
        source.load("fake_sizes", "train", data_dir)
    assert source.prepared_datasets(data_dir) == [
        "fake_configs/large",
        "fake_configs/small",
        "fake_faces",
        "fake_sizes",
    ]


def test_an_unknown_name_names_both_ways_to_prepare(tmp_path):
    with pytest.raises(source.UnknownDatasetError) as error:
        source.load("my_photos", data_dir=str(tmp_path))
    assert isinstance(error.value, source.DatasetNotPreparedError)
    assert isinstance(error.value, ValueError)
    message = str(error.value)
    assert "\n" not in message and "(prepared: none)" in message
    assert (
        "python -m gan_jax.data.prepare image_folder --path=DIR --name=my_photos "
        f"--data_dir={tmp_path}"
    ) in message
    assert "file_format='array_record'" in message
    with pytest.raises(ValueError, match="not a dataset name"):
        source.load("../secrets", data_dir=str(tmp_path))


def test_cached_load_of_a_folder_set_matches_the_decoded_one(tmp_path, class_folder):
    image_folder.prepare(str(tmp_path), path=class_folder, name="fruit", num_workers=1)
    directory = image_folder.dataset_dir(str(tmp_path), "fruit")
    first = source.load("fruit", data_dir=str(tmp_path))  # prepare() does not fill the cache
    assert os.path.exists(os.path.join(directory, "gan_jax_arrays-train.npz"))
    second = source.load("fruit", data_dir=str(tmp_path))
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)
    with open(os.path.join(directory, "metadata.json")) as f:
        assert json.load(f)["kept"] == len(first.images)
