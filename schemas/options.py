"""One declaration per option: typed configs whose fields generate the command line.

Every command's configuration is a frozen dataclass, saved with every artifact it writes. A
field becomes a command-line option when its metadata has a ``help`` entry (:func:`option`
writes it; the text core writes the same plain metadata without importing this module):

    @dataclass(frozen=True, kw_only=True)
    class TrainConfig:
        data: str = option(help="utterances dataset", required=True)
        max_steps: int = option(1000, help="optimizer steps")
        bf16: bool = option(True, help="bf16 autocast on CUDA")          # -> --no-bf16
        buckets: tuple[int, ...] = option((8, 16), help="...", parse=int_tuple)

Metadata keys: ``help``, ``flag`` (default ``--field-name``; ``--no-name`` for a bool that
defaults to true), ``choices``, ``parse`` (str -> value), ``repeat`` (an ``append`` option
collected into a tuple), ``metavar``, ``required``. A field whose type is a dataclass and that
has no ``help`` contributes its own fields (flattened); its default instance supplies their
defaults, so a command states its own defaults once, where it declares the field.

:class:`MalmoiError` is the one error type for bad input (what was expected, what was found,
and the fix); :func:`cli_main` runs a command, prints such errors in one line (exit 2) and
leaves tracebacks for real bugs.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any

MISSING = dataclasses.MISSING


class MalmoiError(ValueError):
    """Bad input or set-up: the message says what was expected and what was found; ``fix`` says what to do."""

    def __init__(self, message: str, fix: str = "") -> None:
        self.fix = fix
        super().__init__(message if not fix else f"{message} Fix: {fix}")


def option(default: Any = MISSING, *, help: str, flag: str | None = None,
           choices: Sequence[Any] | Callable[[], Sequence[Any]] | None = None,
           parse: Callable[[str], Any] | None = None, repeat: bool = False, metavar: str | None = None,
           required: bool = False, default_factory: Callable[[], Any] | Any = MISSING) -> Any:
    """A dataclass field that is also a command-line option (see the module docstring)."""
    if callable(choices):  # resolved when the parser is built (e.g. formats registered later)
        choices = (choices,)
    metadata = {"help": help, "flag": flag, "choices": tuple(choices) if choices else None, "parse": parse,
                "repeat": repeat, "metavar": metavar, "required": required}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def int_tuple(text: str) -> tuple[int, ...]:
    """``"8,16,32"`` -> ``(8, 16, 32)``."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 8,16,32; found {text!r}") from error


def fraction(text: str) -> float:
    """``"0.25"`` -> ``0.25``; a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1] such as 0.25; found {text!r}") from error
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1] such as 0.25; found {text!r}")
    return value


def str_tuple(text: str) -> tuple[str, ...]:
    """``"train,valid"`` -> ``("train", "valid")``."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _is_option(field: dataclasses.Field) -> bool:
    return "help" in field.metadata


def _default_of(field: dataclasses.Field, parent_default: Any) -> Any:
    if parent_default is not None and parent_default is not MISSING:
        return getattr(parent_default, field.name)
    if field.default is not MISSING:
        return field.default
    if field.default_factory is not MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return MISSING


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))


def _base_type(hint: Any) -> Any:
    """``int | None`` -> ``int``; ``tuple[int, ...]`` -> ``tuple``."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        return _base_type(args[0])
    return origin or hint


def _element_type(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None) and a is not Ellipsis]
    if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return _element_type(args[0])
    return args[0] if args else str


def _describe(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) if value else "none"
    return str(value)


def _argparse_type(parse: Callable[[str], Any] | None) -> Callable[[str], Any] | None:
    """``parse`` with its ``ValueError`` message kept (argparse would print only "invalid value")."""
    if parse is None:
        return None

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except (ValueError, OSError) as error:
            raise argparse.ArgumentTypeError(str(error)) from error

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


class _StoreOnce(argparse.Action):
    """``store`` that refuses a second, different value: argparse keeps the last one silently, so
    ``--teacher A --teacher B`` on a one-value option would drop A without a word."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault("_malmoi_given", {})
        if self.dest in given and given[self.dest] != values:
            parser.error(f"{option_string} takes one value; found {given[self.dest]!r}, then {values!r}. "
                         "Fix: give it once.")
        given[self.dest] = values
        setattr(namespace, self.dest, values)


def add_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type, *,
                default: Any = None, prefix: str = "") -> None:
    """Add one argparse option per option field of ``cls`` (nested dataclass fields flattened).

    ``default`` is an instance whose values are the defaults shown and used (a command's own
    defaults for a shared config such as the training loop); else the fields' defaults.
    """
    hints = _hints(cls)
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        value = _default_of(field, default)
        dest = prefix + field.name
        if not _is_option(field):
            if dataclasses.is_dataclass(_base_type(hint)) and isinstance(_base_type(hint), type):
                add_options(parser, _base_type(hint), default=None if value is MISSING else value, prefix=dest + ".")
            continue
        meta = field.metadata
        kind = _base_type(hint)
        kwargs: dict[str, Any] = {"dest": dest, "help": meta["help"]}
        if meta.get("metavar"):
            kwargs["metavar"] = meta["metavar"]
        if meta.get("choices"):
            choices = meta["choices"]
            kwargs["choices"] = tuple(choices[0]()) if len(choices) == 1 and callable(choices[0]) else choices
        flag = meta.get("flag")
        if kind is bool and not meta.get("parse"):
            if value is True:
                flag = flag or "--no-" + field.name.replace("_", "-")
                kwargs["action"] = "store_false"
                # the field's help says what is on; the flag switches it off, and its help must say so
                kwargs["help"] = f"turn off what is on by default: {meta['help']}"
            else:
                flag = flag or "--" + field.name.replace("_", "-")
                kwargs["action"] = "store_true"
            kwargs["default"] = bool(value) if value is not MISSING else False
            parser.add_argument(flag, **_literal_help(kwargs))
            continue
        flag = flag or "--" + field.name.replace("_", "-")
        kwargs.setdefault("metavar", None if "choices" in kwargs else flag.lstrip("-").upper().replace("-", "_"))
        if meta.get("repeat"):
            kwargs["action"] = "append"
            kwargs["type"] = _argparse_type(meta.get("parse")) or _element_type(hint)
            kwargs["default"] = None
        else:
            kwargs["type"] = _argparse_type(meta.get("parse")) or (kind if kind in (int, float, str) else str)
            kwargs["default"] = None if value is MISSING else value
            kwargs["action"] = _StoreOnce
        if meta.get("required") or value is MISSING:
            kwargs["required"] = True
        elif value not in (None, "", ()) and not dataclasses.is_dataclass(value):
            kwargs["help"] += f" (default: {_describe(value)})"
        parser.add_argument(flag, **_literal_help(kwargs))


def _literal_help(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with its help text escaped for argparse, which %-formats help strings: a help
    that says "~3% padding" made ``--help`` itself fail ("unsupported format character")."""
    return {**kwargs, "help": kwargs["help"].replace("%", "%%")}


def from_args(cls: type, args: argparse.Namespace, *, default: Any = None, prefix: str = "") -> Any:
    """The ``cls`` instance that ``args`` (parsed with :func:`add_options`) describes."""
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        dest = prefix + field.name
        value = _default_of(field, default)
        if not _is_option(field):
            kind = _base_type(hint)
            if dataclasses.is_dataclass(kind) and isinstance(kind, type):
                values[field.name] = from_args(kind, args, default=None if value is MISSING else value,
                                               prefix=dest + ".")
            elif value is not MISSING:
                values[field.name] = value
            continue
        parsed = getattr(args, dest)
        if field.metadata.get("repeat"):
            parsed = tuple(dict.fromkeys(parsed)) if parsed is not None else (value if value is not MISSING else ())
        values[field.name] = parsed
    return cls(**values)


def to_argv(config: Any) -> list[str]:
    """The flags that make :func:`add_options` + :func:`from_args` give back ``config`` (a flat
    options dataclass): one per field whose value differs from its default, so a command can hand
    its own options on to another (``kd.pipeline`` → ``preprocess``)."""
    argv: list[str] = []
    for field in dataclasses.fields(config):
        if not _is_option(field):
            continue
        value, default = getattr(config, field.name), _default_of(field, None)
        if value == default:
            continue
        name = field.name.replace("_", "-")
        flag = field.metadata.get("flag")
        if isinstance(value, bool) and not field.metadata.get("parse"):
            argv.append(flag or (f"--{name}" if value else f"--no-{name}"))
        elif field.metadata.get("repeat") and isinstance(value, tuple):
            argv += [a for item in value for a in (flag or f"--{name}", str(item))]
        elif isinstance(value, str | int | float) and not field.metadata.get("parse"):
            argv += [flag or f"--{name}", str(value)]
        else:
            raise ValueError(f"{type(config).__name__}.{field.name} = {value!r} has no flag form; expected a "
                             "string, number or switch that differs from its default.")
    return argv


def cli_main(run: Callable[[list[str] | None], Any], argv: list[str] | None = None) -> int:
    """A command's entry point: run it; bad input prints ``error: …`` with its fix and exits 2.

    Bad input is :class:`MalmoiError` (and the ``ValueError`` / ``OSError`` that libraries raise
    for a bad value or a missing, unreadable path); anything else is a bug and keeps its traceback.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("apache_beam", "root"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        result = run(argv)
    except (MalmoiError, ValueError, OSError) as error:  # OSError: a missing or unreadable path
        print(f"error: {error}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


def config_command(config_cls: type, run: Callable[[Any], int | None], argv: list[str] | None, *, prog: str,
                   description: str | None) -> int:
    """A whole command: parse ``argv`` into ``config_cls`` (its fields are the options), call ``run(config)``
    through :func:`cli_main`."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser, config_cls)
    return cli_main(lambda argv_: run(from_args(config_cls, parser.parse_args(argv_))), argv)
