"""The `--sweep` language: which settings a sweep varies, and the members it makes.

A spec is axes separated by `;`, each `name=values`, where `name` is any field of the
experiment's `Settings` (every flag that changes the config) and `values` is a comma
list of items:

    lr=1e-4,2e-4,5e-4          the listed values
    seed=0:8                   integers 0..7 (`start:stop[:step]`, stop excluded)
    lr=loguniform(1e-5,1e-2,8) 8 draws, log-uniform between the bounds (float settings)
    b1=uniform(0,0.9,4)        4 uniform draws (float settings)
    d_hidden=[5,3],[8,8]       tuples, for settings that hold several integers

Items mix freely (`seed=0:4,10`). The members are every combination of one value
per axis, in the order written (the last axis varies fastest). Random draws are
fixed by the spec's own text, so the same command always makes the same members.
"""

import dataclasses
import itertools
import math
import re
import typing
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from gan_jax.errors import UserError

_DRAW = re.compile(r"^(uniform|loguniform)\((.*)\)$")


@dataclasses.dataclass(frozen=True)
class Member:
    """One run of a sweep: its settings overrides and the name of its workdir."""

    name: str
    overrides: Mapping[str, Any]


def parse(spec: str, settings_class: type) -> list[Member]:
    """The members of `spec` for an experiment with settings `settings_class`.

    Raises:
      UserError: a malformed spec, an unknown or repeated setting, a value of the
        wrong type, or two members with the same name.
    """
    hints = typing.get_type_hints(settings_class)
    axes: dict[str, list[Any]] = {}
    for axis in (part.strip() for part in spec.split(";")):
        if not axis:
            continue
        name, equals, text = axis.partition("=")
        name = name.strip()
        if not equals or not text.strip():
            raise UserError(f"--sweep: expected name=values, got {axis!r}")
        if name not in hints:
            known = ", ".join(sorted(hints))
            raise UserError(f"--sweep: {name!r} is not a setting of this experiment ({known})")
        if name in axes:
            raise UserError(f"--sweep: {name!r} is swept twice")
        values = [v for item in _split_top_level(text) for v in _values(name, item, hints[name])]
        axes[name] = values
    if not axes:
        raise UserError("--sweep: no settings to sweep")
    combinations = [
        dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())
    ]
    members = [Member(_member_name(overrides), overrides) for overrides in combinations]
    names = [m.name for m in members]
    if len(set(names)) < len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise UserError(f"--sweep: repeated members {repeated[:3]} (a value listed twice?)")
    return members


def _split_top_level(text: str) -> list[str]:
    """Splits on commas outside brackets and parentheses."""
    items, depth, current = [], 0, []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if char == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    items.append("".join(current).strip())
    if depth != 0 or not all(items):
        raise UserError(f"--sweep: cannot read the values {text!r}")
    return items


def _values(name: str, item: str, hint: Any) -> list[Any]:
    """The values one item stands for, as the setting's type holds them."""
    kind = _without_none(hint)
    draw = _DRAW.match(item)
    if draw:
        if kind is not float:
            raise UserError(f"--sweep: {name} is not a float setting; {item!r} draws floats")
        return _draws(name, item, draw.group(1), draw.group(2))
    if ":" in item and kind is int:
        parts = item.split(":")
        if len(parts) not in (2, 3):
            raise UserError(f"--sweep: {name}={item!r}: a range is start:stop[:step]")
        bounds = [_convert(name, part, int) for part in parts]
        values = list(range(*bounds))
        if not values:
            raise UserError(f"--sweep: {name}={item!r} is an empty range")
        return values
    return [_convert(name, item, hint)]


def _draws(name: str, item: str, law: str, arguments: str) -> list[float]:
    parts = [part.strip() for part in arguments.split(",")]
    if len(parts) != 3:
        raise UserError(f"--sweep: {name}={item!r}: expected {law}(low,high,count)")
    low, high = (_convert(name, part, float) for part in parts[:2])
    count = _convert(name, parts[2], int)
    if count <= 0 or not low < high or (law == "loguniform" and low <= 0):
        raise UserError(f"--sweep: {name}={item!r}: need count > 0 and 0 < low < high")
    # Seeded by the item's text: the same spec always draws the same values.
    rng = np.random.default_rng(zlib.crc32(f"{name}={item}".encode()))
    if law == "uniform":
        values = rng.uniform(low, high, count)
    else:
        values = np.exp(rng.uniform(math.log(low), math.log(high), count))
    return [float(f"{v:.4g}") for v in values]  # readable member names


def _without_none(hint: Any) -> Any:
    args = typing.get_args(hint)
    if type(None) in args and typing.get_origin(hint) is not Literal:
        (kind,) = [a for a in args if a is not type(None)]
        return kind
    return hint


def _convert(name: str, text: str, hint: Any) -> Any:
    """`text` as a value of the setting's type; a one-line error if it is not one."""
    kind = _without_none(hint)
    if kind is not hint and text.lower() == "none":
        return None
    try:
        if typing.get_origin(kind) is Literal:
            if text not in typing.get_args(kind):
                raise ValueError(f"not one of {typing.get_args(kind)}")
            return text
        if typing.get_origin(kind) is tuple:
            if not (text.startswith("[") and text.endswith("]")):
                raise ValueError("write several integers as [a,b,...]")
            inner = text[1:-1].strip()
            return tuple(int(v) for v in inner.split(",")) if inner else ()
        if kind is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError("not true or false")
            return text.lower() == "true"
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        return str(text)
    except ValueError as error:
        raise UserError(f"--sweep: {name}={text!r}: {error}") from None


def _member_name(overrides: Mapping[str, Any]) -> str:
    """A workdir name from the swept values, e.g. `lr=0.0002_seed=3`."""
    return "_".join(f"{name}={_show(value)}" for name, value in overrides.items())


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "-".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("/", "-")


def groups(configs: Sequence[Any]) -> list[list[int]]:
    """Member indices grouped by everything that shapes the compiled program.

    Members in one group differ only in values that the training state carries (the
    seed and the optimizers' hyperparameters, which `optax.inject_hyperparams` keeps in
    the optimizer state), so one vmapped program can train them together. Groups come
    in the order of their first member.
    """
    by_structure: dict[Any, list[int]] = {}
    for index, config in enumerate(configs):
        by_structure.setdefault(_structure(config), []).append(index)
    return list(by_structure.values())


# The `OptimizerConfig` fields that live in the optimizer state, not in the compiled
# program: `optim.create_optimizer` injects them (optax.inject_hyperparams). So members of
# one vmapped group may differ in them, and a resumed run may change them
# (`resume.MUTABLE_FIELDS`). Defined here, the lowest module that asks.
STATE_HYPERPARAMETERS = ("learning_rate", "b1", "b2", "eps", "decay")


def _structure(config: Any) -> str:
    """The config with every in-state value blanked out, as a comparable string."""
    blank = {name: 0.0 for name in STATE_HYPERPARAMETERS}
    structural = dataclasses.replace(
        config,
        seed=0,
        g_optimizer=dataclasses.replace(config.g_optimizer, **blank),
        d_optimizer=dataclasses.replace(config.d_optimizer, **blank),
    )
    return repr(structural)
