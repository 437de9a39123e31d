"""What each data set is, in one table: training, the pipeline and evaluation ask it.

An entry says whether the set is drawn from the run's seed (synthetic) or read from
prepared files, whether it has class labels, the shape of one example, and which scores
fit it. `kind_of(name)` answers for any name a config can hold: the project's own sets
(`DATA_SETS`, also 'pokemon/sprites' for a config of one), and any other name, a folder
of images the user prepared (`python -m gan_jax.data.prepare image_folder --name=NAME`)
or a TFDS image set prepared in the data dir (`PREPARED_IMAGES`). What such a set holds
is known only from its prepared files: it is labelled when it has class folders.

A new data set is one entry here (and, for a prepared one, its builder and a line in
`gan_jax.data.prepare`). The table imports nothing heavy: drawing a synthetic set
imports JAX only when it is drawn.
"""

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# The score families `gan_jax.evaluation` computes; an entry's `scores` names those that fit.
# The Gaussian fitted to generated points and its 2-Wasserstein distance to the data's (w2).
GAUSSIAN_W2 = "gaussian_w2"
# FID, KID, precision, recall, density, coverage, inception score and class coverage in
# the features of a classifier trained on the set's own labels: labelled image sets.
CLASSIFIER = "classifier"
# The same in Inception-v3's features (prefixed inception_), with the Inception Score.
INCEPTION = "inception"
# Foster's memorisation check: L1 of generated images to their nearest training images.
MEMORISATION = "memorisation"
# The real test images scored as samples against the training images: the best a
# generator can hope for (`python -m gan_jax.evaluate --real_floor`).
REAL_FLOOR = "real_floor"
# The families every image set gets, labelled or not.
IMAGE_SCORES = frozenset({INCEPTION, MEMORISATION})


@dataclasses.dataclass(frozen=True)
class DataSetKind:
    """What a data set is: where its examples come from, what they hold, what scores fit.

    Attributes:
      labelled: whether the examples carry class labels; None where the prepared files
        decide (`source.load(...).labels`): a user's folder is labelled when it has class
        folders, the Pokemon sprites from version 1.1.0.
      example_shape: one example's shape, (H, W, C) for images; None where the prepared
        files decide.
      scores: the score families that fit it (`CLASSIFIER`, ...). Where `labelled` is
        None, `CLASSIFIER` fits only a prepared set that has labels.
      num_classes: the number of classes where it is fixed, else None.
      draw: for a synthetic set, `draw(seed, **DataConfig.kwargs)` returns its examples;
        None for a set read from prepared files.
      variants: the TFDS variant directories of one of the project's prepared sets,
        relative to the data dir, in order of preference; they must match the builders'
        names, configs and versions (checked by the tests).
    """

    labelled: bool | None
    example_shape: tuple[int, ...] | None
    scores: frozenset[str]
    num_classes: int | None = None
    draw: Callable[..., "np.ndarray"] | None = None
    variants: tuple[str, ...] = ()

    @property
    def drawn_from_seed(self) -> bool:
        """Whether the examples are drawn from the run's seed (each sweep member draws its
        own), rather than read from prepared files and shared."""
        return self.draw is not None


def _draw_gaussian_2d(seed: int, **kwargs: Any) -> "np.ndarray":
    from gan_jax.data import gaussian  # Here, not at the top: the table needs no JAX.

    return gaussian.make_dataset(seed, **kwargs)


# The project's own data sets, by the name a config gives (`DataConfig.name`).
DATA_SETS: dict[str, DataSetKind] = {
    # D2L 20.1's points, drawn from the run's seed (`gan_jax.data.gaussian`).
    "gaussian_2d": DataSetKind(
        labelled=False,
        example_shape=(2,),
        scores=frozenset({GAUSSIAN_W2}),
        draw=_draw_gaussian_2d,
    ),
    "mnist": DataSetKind(
        labelled=True,
        example_shape=(28, 28, 1),
        scores=IMAGE_SCORES | {CLASSIFIER, REAL_FLOOR},
        num_classes=10,
        variants=("mnist/3.0.1",),
    ),
    # D2L's sprite set is the one the DCGAN chapter trains on; the npm sprites are the
    # offline stand-in, labelled by species from 1.1.0 (1.0.0: the same images in the
    # same order, no labels; still read where it is all that is prepared). See
    # gan_jax.data.pokemon.
    "pokemon": DataSetKind(
        labelled=None,
        example_shape=(64, 64, 3),
        scores=IMAGE_SCORES | {CLASSIFIER},
        variants=("pokemon/d2l/1.0.0", "pokemon/sprites/1.1.0", "pokemon/sprites/1.0.0"),
    ),
    # Quick, Draw! camels: bitmaps without labels.
    "quickdraw_camel": DataSetKind(
        labelled=False,
        example_shape=(28, 28, 1),
        scores=IMAGE_SCORES,
        variants=("quickdraw_camel/1.0.0",),
    ),
}

# Any other name: a folder of images the user prepared under it, or a TFDS image set
# prepared in the data dir. Its labels and shape are those of the prepared files.
PREPARED_IMAGES = DataSetKind(labelled=None, example_shape=None, scores=IMAGE_SCORES | {CLASSIFIER})


def kind_of(name: str) -> DataSetKind:
    """What the data set a config names is.

    Args:
      name: `DataConfig.name`: one of `DATA_SETS` ('mnist'), a config of one of them
        ('pokemon/sprites'), or any other name (a prepared image folder, 'cifar10').

    Returns:
      Its entry of `DATA_SETS`, else `PREPARED_IMAGES`.
    """
    data_set, _, config = name.partition("/")
    kind = DATA_SETS.get(data_set)
    if kind is None or (config and not kind.variants):  # only prepared sets have configs
        return PREPARED_IMAGES
    return kind
