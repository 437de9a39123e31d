"""What every command shares: signal handling from the first import, one-line errors.

Each command module (`gan_jax.run_experiment` for the experiments, `gan_jax.sample`,
`gan_jax.evaluate`, `gan_jax.data.prepare`, `gan_jax.metrics.train_classifier`)
imports this module before anything that loads JAX, defines only the flags it reads
and hands its `main` to `run`.
"""

import dataclasses
import logging as std_logging
import os
import sys
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal

from absl import app, flags, logging

from gan_jax import interrupts, user_cache, xla_flags
from gan_jax.errors import Interrupted, UserError
from gan_jax.settings import Check, describe

# From here on SIGINT and SIGTERM end the process in one line (or, while training,
# stop it with a checkpoint), even during the imports and compilation of start-up.
interrupts.install()
# Before JAX starts: device threads that fall behind on a loaded machine wait, not abort.
xla_flags.use_patient_collectives()


def validate(name: str, check: Check, registry: flags.FlagValues = flags.FLAGS) -> None:
    """Makes absl refuse `--name` values that fail `check`, saying `--name <requirement>`."""
    flags.register_validator(
        name, check.holds, message=f"--{name} {check.requirement}", flag_values=registry
    )


# Flags are registered to the script that runs, so that its --helpshort lists them.
_MAIN = sys.argv[0]


def define_flags(
    settings_class: type, registry: flags.FlagValues = flags.FLAGS
) -> dict[str, flags.FlagHolder]:
    """One flag per field of a settings dataclass, with its default, help and check.

    Supported field types: bool, int, float, str, a `Literal` of strings (an enum flag),
    `tuple[int, ...]` (comma-separated integers) and any of these `| None`.
    """
    holders = {}
    hints = typing.get_type_hints(settings_class)
    for field in dataclasses.fields(settings_class):
        help_text, check = describe(settings_class, field.name)
        hint = hints[field.name]
        holders[field.name] = _define(field.name, hint, field.default, help_text, registry)
        if check is not None:
            validate(field.name, _on_flag_value(hint, check), registry)
    return holders


def _define(
    name: str, hint: Any, default: Any, help_text: str, registry: flags.FlagValues
) -> flags.FlagHolder:
    kind = _flag_kind(hint)
    where = {"flag_values": registry, "module_name": _MAIN}
    if typing.get_origin(kind) is Literal:
        choices = [str(v) for v in typing.get_args(kind)]
        return flags.DEFINE_enum(name, default, choices, help_text, **where)
    if typing.get_origin(kind) is tuple:
        holder = flags.DEFINE_list(name, [str(v) for v in default], help_text, **where)
        flags.register_validator(
            name,
            lambda values: all(_is_int(v) for v in values),
            message=f"--{name} takes comma-separated integers",
            flag_values=registry,
        )
        return holder
    define = {
        bool: flags.DEFINE_bool,
        int: flags.DEFINE_integer,
        float: flags.DEFINE_float,
        str: flags.DEFINE_string,
    }[kind]
    return define(name, default, help_text, **where)


def _flag_kind(hint: Any) -> Any:
    """The flag type of a settings type: `int | None` is an int flag defaulting to None."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (kind,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return kind
    return hint


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def parsed_settings(settings_class: type, holders: dict[str, flags.FlagHolder]) -> Any:
    """The settings dataclass holding the parsed flags' values."""
    hints = typing.get_type_hints(settings_class)
    return settings_class(
        **{name: _setting_value(hints[name], holder.value) for name, holder in holders.items()}
    )


def _setting_value(hint: Any, value: Any) -> Any:
    """A flag's value as its settings field holds it."""
    if typing.get_origin(_flag_kind(hint)) is tuple:
        return tuple(int(v) for v in value)
    return value


def _on_flag_value(hint: Any, check: Any) -> Any:
    """`check`, applied to a flag's value (a list flag's value is strings)."""
    if typing.get_origin(_flag_kind(hint)) is not tuple:
        return check
    return dataclasses.replace(
        check, holds=lambda v: not all(map(_is_int, v)) or check.holds(_setting_value(hint, v))
    )


def define_data_dir() -> flags.FlagHolder[str]:
    """The `--data_dir` flag of the commands that read prepared data sets."""
    return flags.DEFINE_string(
        "data_dir",
        None,
        "TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets).",
        module_name=_MAIN,
    )


def define_raw_generator() -> flags.FlagHolder[bool]:
    """The `--raw_generator` flag of the commands that restore a run to sample from it."""
    return flags.DEFINE_bool(
        "raw_generator",
        False,
        "Use the trained G itself even when the run keeps a moving average of G "
        "(--g_ema_decay), which is used otherwise.",
        module_name=_MAIN,
    )


def run(main: Callable[[Sequence[str]], None], max_args: int = 0) -> None:
    """`app.run(main)`, turning the errors a user can cause into one line and exit code 1.

    SIGINT and SIGTERM end the process with one line and status 128 + signal number
    (130, 143); a training run first saves a checkpoint (see `gan_jax.interrupts`).

    Args:
      main: called with argv.
      max_args: positional arguments `main` accepts (more is a usage error).
    """

    cache = flags.DEFINE_string(
        "compilation_cache",
        user_cache.default_compilation_cache_dir(),
        "Folder of XLA's persistent compilation cache: a second start of the same program "
        "skips its compilations. Empty: no cache.",
        module_name=_MAIN,
    )

    def guarded(argv: Sequence[str]) -> None:
        logging.get_absl_handler().addFilter(_OwnInfoOnly())
        user_cache.use_compilation_cache(cache.value)
        if len(argv) > 1 + max_args:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1 + max_args :])}")
        try:
            main(argv)
        except (UserError, FloatingPointError) as error:
            exit_now(f"error: {error}", 1)
        except Interrupted as stop:
            exit_now(str(stop), 128 + stop.signum)

    app.run(guarded)


def exit_now(message: str, status: int) -> None:
    """Prints `message` and exits without interpreter teardown.

    After a failed save, Orbax's background threads may still run; tearing the
    interpreter down under them prints pages of errors. Everything of ours is
    closed and flushed by now.
    """
    logging.flush()
    sys.stdout.flush()
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os._exit(status)


class _OwnInfoOnly(std_logging.Filter):
    """Keeps INFO lines of this project only; Orbax alone logs dozens per checkpoint."""

    _ours = (
        os.sep + "gan_jax" + os.sep,
        os.sep + "experiments" + os.sep,
        os.sep + "benchmarks" + os.sep,
    )

    def filter(self, record: std_logging.LogRecord) -> bool:
        ours = any(p in record.pathname for p in self._ours)
        if not ours and "read only" in record.getMessage():
            return False  # Orbax's note that a reader's manager is read-only, as asked.
        if not ours and record.levelno >= std_logging.ERROR:
            if f"{os.sep}orbax{os.sep}" in record.pathname:
                # Orbax logs a failed background save with tracebacks on each of its
                # threads, then raises the error, which we report in one line.
                return False
            record.exc_info, record.exc_text = None, None
        return record.levelno >= std_logging.WARNING or ours
