"""A domain classifier on disk: saving and loading one, and where the cache keeps each set's.

A directory holds the parameters (Orbax) and `info.json`, which names the architecture and
what the classifier was trained on; a classifier that does not fit what is asked of it is
refused in one line naming the command that retrains it. A set's classifier is cached
under a key naming its variant and a digest of its training images and labels
(`dataset_key`), so a changed set is never scored with a stale classifier. MNIST keeps its
own place, `~/.cache/gan_jax/mnist_classifier`.
"""

import functools
import json
import os
import re
from collections.abc import Mapping
from typing import Any

import jax

from gan_jax.checkpoint import restore_pytree, save_pytree, state_digest
from gan_jax.errors import UserError
from gan_jax.metrics.classifier_net import (
    MNIST_ARCHITECTURE,
    Architecture,
    architecture_for,
    check_fits,
    init_params,
    module_of,
)
from gan_jax.user_cache import user_cache_dir

TRAIN_COMMAND = "python -m gan_jax.metrics.train_classifier"
# The set whose classifier keeps its own place (`default_classifier_dir`).
MNIST = "mnist"

_PARAMS_SUBDIR = "params"
_INFO_FILE = "info.json"
# Keys of `classifier_dir`: readable, and safe as one directory name.
_UNSAFE_KEY_CHARACTERS = re.compile(r"[^\w.+-]+")
_KEY_DIGEST_CHARS = 16


class NoClassifierError(UserError, FileNotFoundError):
    """Raised when a directory holds no (usable) trained classifier."""


def default_classifier_dir() -> str:
    """Where the MNIST classifier lives: `$XDG_CACHE_HOME/gan_jax/mnist_classifier`.

    Falls back to `~/.cache/gan_jax/mnist_classifier`, beside the datasets' fetched sources.
    """
    return os.path.join(user_cache_dir(), "mnist_classifier")


def dataset_key(variant: str, digest: str) -> str:
    """A cache key naming a set: its variant and its data's digest, one directory name.

    E.g. `dataset_key('pokemon/sprites/1.1.0', digest)` -> 'pokemon-sprites-1.1.0-3fa2...'
    (the first 16 hex digits: 64 bits).
    """
    name = _UNSAFE_KEY_CHARACTERS.sub("-", variant).strip("-.") or "data"
    return f"{name}-{digest[:_KEY_DIGEST_CHARS]}"


def classifier_dir(key: str) -> str:
    """Where the classifier of the set `key` (from `dataset_key`) is cached:
    `$XDG_CACHE_HOME/gan_jax/classifiers/<key>` (else `~/.cache/...`)."""
    return os.path.join(user_cache_dir(), "classifiers", key)


def save_classifier(
    directory: str, architecture: Architecture, params: Any, info: Mapping[str, Any]
) -> dict[str, Any]:
    """Writes the parameters (Orbax) and `info` (JSON) into `directory`, replacing any there.

    `info.json` is written last, atomically, and removed first: a directory holds a usable
    classifier exactly when it is present, so an interrupted save reads as "no classifier".

    Args:
      directory: created if needed.
      architecture: the network `params` belong to.
      params: from `train_classifier`.
      info: plain JSON values: held-out accuracy, training settings and the like. The
        architecture (tag, image shape, classes, feature width) and `params_digest` are
        added.

    Returns:
      The info as written, with those added.
    """
    check_fits(params, architecture.image_shape)
    if module_of(params).tag != architecture.tag:
        raise ValueError(f"the parameters are {module_of(params).tag}, not {architecture.tag}")
    directory = os.path.abspath(os.path.expanduser(directory))
    os.makedirs(directory, exist_ok=True)
    info_path = os.path.join(directory, _INFO_FILE)
    if os.path.exists(info_path):
        os.remove(info_path)
    save_pytree(os.path.join(directory, _PARAMS_SUBDIR), params)
    full = {
        **info,
        "architecture": architecture.tag,
        "image_shape": list(architecture.image_shape),
        "num_classes": architecture.num_classes,
        "feature_dim": architecture.feature_dim,
        "params_digest": state_digest(params),
    }
    tmp = f"{info_path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(full, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, info_path)
    return full


def has_classifier(directory: str) -> bool:
    """Whether `directory` holds a saved classifier (of any architecture)."""
    return os.path.isfile(os.path.join(os.path.expanduser(directory), _INFO_FILE))


def display_name(dataset: str | None) -> str:
    """How messages name a data set's classifier: 'MNIST', 'pokemon', ..."""
    return "MNIST" if dataset == MNIST else (dataset or "domain")


def _train_command(dataset: str | None, directory: str) -> str:
    """The command that trains a classifier into `directory`."""
    command = TRAIN_COMMAND
    if dataset == MNIST:
        default = directory == os.path.abspath(default_classifier_dir())
    else:
        command += f" --dataset={dataset or 'NAME'}"
        default = os.path.dirname(directory) == os.path.abspath(classifier_dir(""))
    return command if default else f"{command} --out_dir={directory}"


def saved_architecture(info: Mapping[str, Any]) -> Architecture | None:
    """The architecture `info.json` describes, or None for one this code cannot build."""
    if "image_shape" not in info:  # saved before the domain classifier: MNIST's
        legacy = info.get("architecture") == MNIST_ARCHITECTURE.tag
        return MNIST_ARCHITECTURE if legacy else None
    try:
        architecture = architecture_for(
            info["image_shape"], info["num_classes"], info["feature_dim"]
        )
    except (KeyError, TypeError, ValueError):
        return None
    return architecture if info.get("architecture") == architecture.tag else None


def load_classifier(
    directory: str,
    *,
    expected: Architecture | None = None,
    data_digest: str | None = None,
    dataset: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Reads a classifier written by `save_classifier`, refusing one that does not fit.

    Args:
      directory: where it was saved.
      expected: the architecture it must have (image shape, classes, feature width);
        None for whichever it has.
      data_digest: the `data_digest` of the training split it must have been trained on;
        None to accept any. (MNIST classifiers saved before digests were recorded have
        none, and are accepted.)
      dataset: the data set's name, for the messages' train command.

    Returns:
      (params for `classifier_outputs`, the saved info dict).

    Raises:
      NoClassifierError: if the directory holds no classifier, one of another
        architecture or image shape, or one trained on other data; the one-line
        message names the command that trains one.
    """
    directory = os.path.abspath(os.path.expanduser(directory))
    command = _train_command(dataset, directory)
    info_path = os.path.join(directory, _INFO_FILE)
    params_path = os.path.join(directory, _PARAMS_SUBDIR)
    if not (os.path.isfile(info_path) and os.path.isdir(params_path)):
        raise NoClassifierError(
            f"no {display_name(dataset)} classifier in {directory}: train one with {command}"
        )
    with open(info_path) as f:
        info = json.load(f)
    architecture = saved_architecture(info)
    if architecture is None or (expected is not None and architecture != expected):
        shape = list(architecture.image_shape) if architecture else info.get("image_shape")
        wanted = f", not {expected.tag!r} for {list(expected.image_shape)}" if expected else ""
        raise NoClassifierError(
            f"the classifier in {directory} is {info.get('architecture')!r} for images "
            f"{shape}{wanted}: retrain it with {command}"
        )
    if data_digest is not None and info.get("data_digest") not in (None, data_digest):
        raise NoClassifierError(
            f"the classifier in {directory} was trained on other data (digest "
            f"{info['data_digest'][:12]}, this set's {data_digest[:12]}): retrain it with "
            f"{command}"
        )
    abstract = jax.eval_shape(functools.partial(init_params, architecture), jax.random.key(0))
    return restore_pytree(params_path, abstract), info
