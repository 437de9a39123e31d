"""A run's pictures: at each drawing epoch, the sample grid (a scatter plot for 2-D
data) from fixed latents and the loss curves, drawn here or, for a large sweep, in a
process of their own."""

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from gan_jax import distributed, viz
from gan_jax import workdir as workdir_lib
from gan_jax.data.pipeline import unscale
from gan_jax.metric_writer import MetricWriter
from gan_jax.sampling import grid_inputs, write_samples
from gan_jax.state import GAN, GANState

# From this many members a sweep group draws its final pictures in another process:
# starting one (its imports) takes about 2 s, the pictures of a member about 0.16 s.
DRAWING_PROCESS_MEMBERS = 16

# Calls a drawing function with its arguments: here, or in a `viz.DrawingProcess`.
Draw = Callable[..., None]


def drawing_for(num_members: int) -> contextlib.AbstractContextManager[viz.DrawingProcess | None]:
    """A process for the final pictures of a sweep of `num_members` members, or None
    (in a context that gives None) when drawing them in this process is quicker.

    Leaving the context waits for every picture and raises the first drawing error.
    """
    if num_members >= DRAWING_PROCESS_MEMBERS and distributed.is_main():
        return viz.DrawingProcess()
    return contextlib.nullcontext()


def draw_here(function: Callable[..., None], *args: Any) -> None:
    function(*args)


@dataclasses.dataclass(frozen=True)
class Grid:
    """What every sample grid of a run is drawn from."""

    z: jax.Array  # fixed latents
    labels: jax.Array | None  # a conditional GAN's classes, one row each
    num_cols: int
    real_points: np.ndarray | None  # for 2-D data: real points shown beside the samples


def grid_for(gan: GAN, examples: np.ndarray) -> Grid:
    z, labels, num_cols = grid_inputs(gan.config)
    return Grid(z, labels, num_cols, examples[:100] if examples.ndim == 2 else None)


def draw_epoch(
    gan: GAN,
    state: GANState,
    grid: Grid,
    workdir: str,
    step: int,
    epoch: int,
    writer: MetricWriter,
    draw: Draw = draw_here,
) -> None:
    """The sample grid of `state` for `epoch` (also to TensorBoard) and the loss curves
    of the records written so far."""
    config = gan.config
    samples = np.asarray(gan.jitted_generate(state, grid.z, grid.labels))
    draw(
        write_samples,
        workdir_lib.sample_grid(workdir, epoch),
        samples,
        config,
        grid.num_cols,
        grid.real_points,
    )
    if samples.ndim == 4:
        writer.write_images("samples", step, np.clip(unscale(samples, config.data.scaling), 0, 1))
    draw(viz.save_loss_plot, workdir_lib.loss_plot(workdir), list(writer.records))
