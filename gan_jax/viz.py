"""Pictures of a run: image grids, loss curves and 2-D scatter plots, written as PNG."""

import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image


def image_grid(images: np.ndarray, num_cols: int, padding: int = 2) -> np.ndarray:
    """Tiles (N, H, W, C) images with values in [0, 1] into one uint8 (H', W', C) image.

    Rows are filled left to right; missing cells and the padding are white.
    """
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    n, h, w, c = images.shape
    num_rows = -(-n // num_cols)
    grid = np.ones(
        (num_rows * (h + padding) + padding, num_cols * (w + padding) + padding, c), np.float32
    )
    for i, image in enumerate(images):
        row, col = divmod(i, num_cols)
        top, left = padding + row * (h + padding), padding + col * (w + padding)
        grid[top : top + h, left : left + w] = image
    return np.round(grid * 255).astype(np.uint8)


def save_image(path: str, image: np.ndarray, scale: int = 1) -> None:
    """Writes a uint8 (H, W, C) image as PNG, enlarged `scale` times (nearest neighbour)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if image.shape[-1] == 1:
        image = image[..., 0]
    if scale > 1:
        image = image.repeat(scale, axis=0).repeat(scale, axis=1)
    Image.fromarray(image).save(path)


def save_image_grid(path: str, images: np.ndarray, num_cols: int) -> None:
    """Writes images in [0, 1] as one PNG grid; small images are enlarged for viewing."""
    grid = image_grid(images, num_cols)
    save_image(path, grid, scale=max(1, 256 // max(images.shape[1], 1) // 2))


def save_loss_plot(
    path: str, records: Sequence[Mapping[str, Any]], keys: Sequence[str] = ("loss_d", "loss_g")
) -> None:
    """Plots per-epoch losses (records as in metrics.jsonl) against the epoch; records
    without them (a search's rung, a divergence) are skipped."""
    records = [r for r in records if "epoch" in r and all(key in r for key in keys)]
    epochs = [r["epoch"] for r in records]
    fig = _figure(figsize=(6, 4))
    ax = fig.subplots()
    for key in keys:
        ax.plot(
            epochs, [r[key] for r in records], marker="." if len(records) < 50 else None, label=key
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def save_scatter(path: str, real: np.ndarray, generated: np.ndarray, title: str = "") -> None:
    """Plots 2-D real and generated points, as D2L's 20.1 figure does."""
    fig = _figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.scatter(real[:, 0], real[:, 1], s=8, label="real")
    ax.scatter(generated[:, 0], generated[:, 1], s=8, label="generated")
    ax.legend()
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _save(fig, path)


def save_setting_plot(
    path: str,
    labels: Sequence[str],
    means: Sequence[float],
    stds: Sequence[float],
    points: Sequence[tuple[int, float]],
    xlabel: str,
    ylabel: str,
) -> None:
    """A score against one setting's values: each run a dot, mean ± std over the rest."""
    fig = _figure(figsize=(6, 4))
    ax = fig.subplots()
    positions = np.arange(len(labels))
    ax.errorbar(positions, means, yerr=stds, marker="o", capsize=4, label="mean ± std")
    if points:
        x, y = zip(*points, strict=True)
        ax.scatter(x, y, s=10, alpha=0.5, color="gray", label="runs")
    ax.set_xticks(positions, labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def save_grid_plot(
    path: str,
    means: np.ndarray,
    stds: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    ylabel: str,
    xlabel: str,
    title: str,
) -> None:
    """A score over a grid of two settings: colour by mean, each cell's mean ± std."""
    fig = _figure(figsize=(1.3 * len(col_labels) + 2, 0.8 * len(row_labels) + 1.5))
    ax = fig.subplots()
    image = ax.imshow(means, cmap="viridis_r", aspect="auto")
    low, high = np.nanmin(means), np.nanmax(means)
    for i in range(means.shape[0]):
        for j in range(means.shape[1]):
            if np.isfinite(means[i, j]):
                text = f"{means[i, j]:.3g}\n± {stds[i, j]:.2g}"
                light = means[i, j] - low < 0.5 * (high - low)  # the yellow end of viridis_r
                color = "black" if light else "white"
                ax.text(j, i, text, ha="center", va="center", color=color, fontsize=8)
    ax.set_xticks(np.arange(len(col_labels)), col_labels)
    ax.set_yticks(np.arange(len(row_labels)), row_labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.colorbar(image, ax=ax)
    _save(fig, path)


def save_best_of_k_plot(path: str, expected_best: Sequence[float], ylabel: str) -> None:
    """The expected best score of k random runs against k (Lucic et al. 2018)."""
    fig = _figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(np.arange(1, len(expected_best) + 1), expected_best, marker=".")
    ax.set_xlabel("k (runs drawn at random)")
    ax.set_ylabel(f"expected best {ylabel}")
    ax.grid(alpha=0.3)
    _save(fig, path)


def save_lineage_plot(
    path: str,
    names: Sequence[str],
    last_step: int,
    copies: Sequence[tuple[int, int, int]],
    settings: Mapping[str, Sequence[Sequence[tuple[int, float]]]],
    best: int,
    best_settings: Mapping[str, Sequence[tuple[int, float]]],
) -> None:
    """A population-based search: which member descended from which, and each setting
    over time.

    Args:
      names: the members, one row each in the top panel.
      last_step: where the x axes end.
      copies: (step, source, target) member indices: a line from the source's row to the
        target's at that step.
      settings: per setting name, per member (slot), its (step, value) changes; one panel
        each, every member a thin step line (log scale).
      best: the best member's index.
      best_settings: per setting name, the (step, value) changes that trained the best
        member's weights (its ancestors' before each copy it descends from), drawn bold.
    """
    fig = _figure(figsize=(9, 3 + 2.2 * len(settings) + 0.12 * len(names)))
    fig.subplots_adjust(left=0.24, right=0.97, bottom=0.08, top=0.95)  # members' names
    axes = fig.subplots(1 + len(settings), 1, sharex=True, squeeze=False)[:, 0]
    lineage = axes[0]
    for m in range(len(names)):
        lineage.plot([0, last_step], [m, m], color="0.85", lw=1, zorder=0)
    for step, source, target in copies:
        lineage.annotate(
            "",
            xy=(step, target),
            xytext=(step, source),
            arrowprops={"arrowstyle": "->", "color": "tab:blue", "lw": 0.8},
        )
    lineage.plot([last_step], [best], marker="*", color="tab:red", markersize=12)
    lineage.set_yticks(range(len(names)), names, fontsize=6)
    lineage.invert_yaxis()
    lineage.set_title("copies (source -> target); * the best member, its settings in red")
    for ax, (setting, members) in zip(axes[1:], settings.items(), strict=True):
        for changes, bold in [*((c, False) for c in members), (best_settings[setting], True)]:
            steps = [step for step, _ in changes] + [last_step]
            values = [value for _, value in changes]
            ax.stairs(
                values,
                steps,
                baseline=None,
                lw=2.5 if bold else 0.8,
                color="tab:red" if bold else "0.6",
                zorder=2 if bold else 1,
            )
        ax.set_yscale("log")
        ax.set_ylabel(setting)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("step")
    _save(fig, path)


def _figure(figsize: tuple[float, float]) -> Any:
    """A matplotlib Figure, which renders without pyplot's global state or a display.

    Matplotlib is imported on first use: it takes half a second, which every command
    would otherwise pay at start-up, plots or not.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=100)
    # Fixed margins that fit the axis labels: `tight_layout` measured them on every
    # call, drawing each figure twice (0.6 s of every sampling epoch went to plots).
    figure.subplots_adjust(left=0.12, right=0.97, bottom=0.12, top=0.92)
    return figure


def _save(figure: Any, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path)


class DrawingProcess:
    """Draws pictures in another process while the caller goes on.

    A sweep's members draw their sample plot and loss curve at the end, dozens at once;
    matplotlib holds the GIL, so a thread would not overlap them with the checkpoints
    and scores that follow, but a process on another core does. 'spawn' rather than
    'fork': the caller runs JAX's threads, which a forked child would inherit mid-lock.
    Use as a context manager; leaving it waits for every picture and raises the first
    drawing error.
    """

    def __init__(self) -> None:
        # One worker: a second one was slower on 2 cores (it competes with the caller).
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")
        )
        self._pending: list[concurrent.futures.Future] = []
        self._pool.submit(int)  # starts the worker now: its imports overlap training

    def draw(self, function: Callable[..., None], *args: Any) -> None:
        """Queues `function(*args)`: a module-level function and picklable arguments."""
        self._pending.append(self._pool.submit(function, *args))

    def __enter__(self) -> "DrawingProcess":
        return self

    def __exit__(self, error_type: Any, *_: Any) -> None:
        try:
            if error_type is None:
                for future in self._pending:
                    future.result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
