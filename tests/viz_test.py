"""Image grids (layout and values) and the PNG writers."""

import os

import numpy as np
import pytest
from PIL import Image

from gan_jax import viz


def test_image_grid_layout_and_padding_grayscale():
    # Five 3x4 images in 2 columns: 3 rows; the sixth cell and the padding stay white.
    images = np.zeros((5, 3, 4, 1), np.float32)
    grid = viz.image_grid(images, num_cols=2, padding=1)
    assert grid.dtype == np.uint8
    assert grid.shape == (3 * (3 + 1) + 1, 2 * (4 + 1) + 1, 1)
    # Image i sits at row i // 2, column i % 2, inside a 1-pixel border.
    for i in range(5):
        row, col = divmod(i, 2)
        top, left = 1 + row * 4, 1 + col * 5
        assert (grid[top : top + 3, left : left + 4] == 0).all()
    assert (grid[0] == 255).all() and (grid[:, 0] == 255).all()  # outer padding
    assert (grid[4] == 255).all()  # padding between rows
    assert (grid[9:12, 6:10] == 255).all()  # the empty sixth cell
    assert (grid == 0).sum() == 5 * 3 * 4


def test_image_grid_maps_values_and_clips():
    values = np.array([-0.5, 0.0, 0.5, 1.0, 2.0], np.float32)
    images = values.reshape(5, 1, 1, 1)
    grid = viz.image_grid(images, num_cols=5, padding=0)
    assert grid.shape == (1, 5, 1)
    np.testing.assert_array_equal(grid[0, :, 0], [0, 0, 128, 255, 255])  # round(127.5) = 128


def test_image_grid_rgb_keeps_channels():
    red = np.zeros((2, 2, 2, 3), np.float32)
    red[..., 0] = 1.0
    grid = viz.image_grid(red, num_cols=2)  # default padding 2
    assert grid.shape == (2 + 2 + 2, 2 + 2 + 2 + 2 + 2, 3)
    np.testing.assert_array_equal(grid[2, 2], [255, 0, 0])
    np.testing.assert_array_equal(grid[0, 0], [255, 255, 255])


def test_save_image_grid_writes_png_of_grid_size(tmp_path):
    # 128-pixel images are not enlarged: scale = max(1, 256 // 128 // 2) = 1.
    images = np.random.default_rng(0).random((3, 128, 128, 3)).astype(np.float32)
    path = str(tmp_path / "sub" / "grid.png")
    viz.save_image_grid(path, images, num_cols=2)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (2 * 130 + 2, 2 * 130 + 2)  # (width, height)
        assert image.mode == "RGB"


def test_save_image_grid_enlarges_small_grayscale_images(tmp_path):
    # 28x28 MNIST-sized images: scale = 256 // 28 // 2 = 4, nearest neighbour.
    images = np.zeros((4, 28, 28, 1), np.float32)
    path = str(tmp_path / "grid.png")
    viz.save_image_grid(path, images, num_cols=2)
    with Image.open(path) as image:
        assert image.mode == "L"
        side = 2 * 30 + 2
        assert image.size == (4 * side, 4 * side)


def test_save_loss_plot_and_scatter_write_pngs(tmp_path):
    records = [{"epoch": e, "loss_d": 1.0 / e, "loss_g": 0.5 * e} for e in range(1, 4)]
    loss_path, scatter_path = str(tmp_path / "loss.png"), str(tmp_path / "a" / "scatter.png")
    viz.save_loss_plot(loss_path, records)
    points = np.random.default_rng(0).normal(size=(20, 2))
    viz.save_scatter(scatter_path, points, points + 1.0, title="epoch 3")
    for path in (loss_path, scatter_path):
        assert os.path.getsize(path) > 0
        with Image.open(path) as image:
            assert image.format == "PNG"
    with Image.open(loss_path) as image:
        assert image.size == (600, 400)  # figsize (6, 4) at 100 dpi
    with Image.open(scatter_path) as image:
        assert image.size == (500, 500)


def test_a_drawing_process_draws_what_the_caller_would_and_reports_its_errors(tmp_path):
    records = [{"epoch": e, "loss_d": 1.0 / e, "loss_g": 0.5 * e} for e in range(1, 4)]
    here, there = str(tmp_path / "here.png"), str(tmp_path / "there" / "loss.png")
    viz.save_loss_plot(here, records)
    with viz.DrawingProcess() as drawing:
        drawing.draw(viz.save_loss_plot, there, records)
    with Image.open(here) as a, Image.open(there) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(TypeError, match="NoneType"), viz.DrawingProcess() as drawing:
        drawing.draw(viz.save_loss_plot, str(tmp_path / "bad.png"), None)
