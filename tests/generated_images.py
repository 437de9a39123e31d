"""Small generated image data sets, prepared as users prepare theirs."""

import io
import pathlib
import zipfile

import numpy as np
from PIL import Image

from gan_jax.data import pokemon


def sprite_png(rng: np.random.Generator) -> bytes:
    """A coloured ellipse on white, like a sprite."""
    image = np.full((64, 64, 3), 255, np.uint8)
    yy, xx = np.mgrid[:64, :64]
    cy, cx, ry, rx = rng.integers(20, 44, 2).tolist() + rng.integers(6, 18, 2).tolist()
    image[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1] = rng.integers(0, 200, 3)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="png")
    return buffer.getvalue()


def prepare_sprites(root: pathlib.Path, data_dir: str, count: int = 32) -> None:
    """`count` generated sprites in D2L's zip layout under `root`, prepared as the
    'pokemon' data set in `data_dir`."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(root / "pokemon.zip", "w") as archive:
        for i in range(count):
            archive.writestr(f"pokemon/kind{i % 4}/{i}.png", sprite_png(rng))
    pokemon.prepare(data_dir, manual_path=str(root / "pokemon.zip"), num_workers=1)
