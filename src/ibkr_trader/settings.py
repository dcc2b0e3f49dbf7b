"""Frozen, validated configuration sections, checked when they are built.

The configuration (:mod:`ibkr_trader.config`, :class:`ibkr_trader.risk.config.RiskLimits`) is
read by every command, ``halt`` and ``status`` included, so it must load in a few
milliseconds: a section is a plain frozen dataclass whose fields are declared with one of the
kinds below (:func:`integer`, :func:`number`, :func:`flag`, :func:`text`, :func:`choice`,
:func:`words`, :func:`path`). Building one (``Section(...)`` or :meth:`Section.from_mapping`)
coerces each value the way a TOML file or an environment variable gives it (``"2"`` for an
integer, ``"false"`` for a flag, ``"spy, qqq"`` for a list of symbols), checks its bounds and
raises one :class:`SettingError` naming every field that is wrong. Nothing is clamped: a
value out of bounds is refused.

pydantic validated these sections until importing it (~0.2 s) became most of every command's
start-up; the signals and gameplans, which come from outside the process, are still pydantic
models (:mod:`ibkr_trader.signals`, :mod:`ibkr_trader.strategies.gameplan`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Final, Self

__all__ = [
    "Section",
    "SettingError",
    "argv",
    "choice",
    "comma_list",
    "flag",
    "integer",
    "number",
    "path",
    "text",
    "words",
]

_KIND: Final = "ibkr_trader.kind"
_TRUE: Final = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE: Final = frozenset({"0", "false", "f", "no", "n", "off"})


class SettingError(ValueError):
    """One or more values of a section are invalid: ``problems`` is ``[(field, why), ...]``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{where}: {why}" for where, why in problems))

    def within(self, prefix: str) -> SettingError:
        """The same problems, each field named ``prefix.field``."""
        return SettingError([(f"{prefix}.{where}", why) for where, why in self.problems])


def _shown(value: Any) -> str:
    """A value for an error message: short, whatever its size (a 400-digit integer is not
    printed whole, nor converted to a float)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_NOT_SHOWN: Final = object()  # a _Problem without a value to show


class _Problem(ValueError):
    """Why a value is refused (``why``), and the value as shown; a section leaves the value
    out for a field kept out of its repr (an account id)."""

    def __init__(self, why: str, value: Any = _NOT_SHOWN) -> None:
        self.why = why
        super().__init__(why if value is _NOT_SHOWN else f"{why} (got {_shown(value)})")


# ASCII digits only: int() and float() also read "١٠" and "２"; a setting is written in ASCII.
_INTEGER: Final = re.compile(r"[+-]?[0-9]+(?:\.0*)?")
_NUMBER: Final = re.compile(
    r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:nan|inf|infinity)", re.I
)


@dataclasses.dataclass(frozen=True, slots=True)
class _Bounds:
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def check(self, value: float) -> None:
        # comparisons of an int with a float are exact in Python, whatever the int's size
        if self.gt is not None and not value > self.gt:
            raise _Problem(f"must be greater than {self.gt:g}", value)
        if self.ge is not None and not value >= self.ge:
            raise _Problem(f"must be at least {self.ge:g}", value)
        if self.lt is not None and not value < self.lt:
            raise _Problem(f"must be less than {self.lt:g}", value)
        if self.le is not None and not value <= self.le:
            raise _Problem(f"must be at most {self.le:g}", value)


@dataclasses.dataclass(frozen=True, slots=True)
class _Kind:
    """How one field's value is coerced and checked."""

    coerce: Callable[[Any], Any]
    optional: bool = False  # None is a value

    def __call__(self, value: Any) -> Any:
        if value is None and self.optional:
            return None
        return self.coerce(value)


def _field(default: Any, kind: _Kind, *, repr_: bool = True) -> Any:
    return dataclasses.field(default=default, repr=repr_, metadata={_KIND: kind})


# ------------------------------------------------------------------- the kinds


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Problem("must be an integer, not a boolean", value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        written = value.strip()
        if _INTEGER.fullmatch(written):  # "2", " 2 ", "2.0" (an environment's 2.0 as TOML's)
            try:
                return int(written.split(".")[0])
            except ValueError:  # beyond Python's 4,300 digits for a string
                raise _Problem("must be an integer of a sensible size", value) from None
    raise _Problem("must be an integer", value)


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise _Problem("must be a number, not a boolean", value)
    try:
        if isinstance(value, int | float):
            result = float(value)
        elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            result = float(value.strip())
        else:
            raise _Problem("must be a number", value)
    except OverflowError:  # an integer beyond a float's range
        raise _Problem("must be a finite number", value) from None
    if not math.isfinite(result):
        raise _Problem("must be a finite number", value)
    return result


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise _Problem("must be true or false", value)


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise _Problem("must be a string", value)
    return value


def _bounded(convert: Callable[[Any], float], bounds: _Bounds) -> Callable[[Any], Any]:
    def coerce(value: Any) -> float:
        result = convert(value)
        bounds.check(result)
        return result

    return coerce


def integer(
    default: int | None,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    optional: bool = False,
) -> Any:
    """An integer field (``"2"`` and ``2.0`` are 2; ``2.5`` and ``true`` are refused)."""
    return _field(default, _Kind(_bounded(_as_int, _Bounds(gt, ge, lt, le)), optional))


def number(
    default: float,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> Any:
    """A finite float field (NaN and infinities are refused)."""
    return _field(default, _Kind(_bounded(_as_float, _Bounds(gt, ge, lt, le))))


def flag(default: bool) -> Any:
    """A boolean field (``true``/``false``, ``1``/``0``, ``yes``/``no``, ``on``/``off``)."""
    return _field(default, _Kind(_as_bool))


def text(
    default: str,
    *,
    strip: bool = False,
    min_length: int = 0,
    max_length: int | None = None,
    pattern: str | None = None,
    repr_: bool = True,
) -> Any:
    """A string field."""
    compiled = re.compile(pattern) if pattern is not None else None

    def coerce(value: Any) -> str:
        result = _as_str(value)
        if strip:
            result = result.strip()
        if len(result) < min_length:
            raise _Problem(
                "must not be empty" if min_length == 1 else f"must be at least {min_length} long"
            )
        if max_length is not None and len(result) > max_length:
            raise _Problem(f"must be at most {max_length} characters (it has {len(result)})")
        if compiled is not None and not compiled.fullmatch(result):
            raise _Problem(f"must match {pattern}", result)
        return result

    return _field(default, _Kind(coerce), repr_=repr_)


def choice(default: str, options: tuple[str, ...], *, fold_case: bool = False) -> Any:
    """One of ``options`` (compared lower-cased and stripped when ``fold_case``)."""

    def coerce(value: Any) -> str:
        result = _as_str(value)
        if fold_case:
            result = result.strip().lower()
        if result not in options:
            raise _Problem(f"must be one of {', '.join(repr(o) for o in options)}", value)
        return result

    return _field(default, _Kind(coerce))


def words(
    default: tuple[str, ...],
    *,
    split: Callable[[str], list[str]] | None = None,
    each: Callable[[str], str] | None = None,
    finish: Callable[[tuple[str, ...]], tuple[str, ...]] | None = None,
) -> Any:
    """A tuple of strings, from a TOML list or a JSON list; a single string is ``split``
    (refused when no ``split`` is given). ``each`` normalises every item, ``finish`` the
    tuple (it may raise ValueError)."""

    def coerce(value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            if split is None:
                raise _Problem("must be a list of strings", value)
            items: list[Any] = split(value)
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            raise _Problem("must be a list of strings", value)
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise _Problem(f"item {index} must be a string", item)
        result = tuple(each(item) for item in items) if each is not None else tuple(items)
        return finish(result) if finish is not None else result

    return _field(default, _Kind(coerce))


def comma_list(value: str) -> list[str]:
    """``"spy, qqq"`` -> ``["spy", " qqq"]`` (empty parts dropped)."""
    return [part for part in value.split(",") if part.strip()]


def argv(value: str) -> list[str]:
    """A command line as a shell would split it (no shell runs it)."""
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise _Problem(f"cannot split the command: {exc}") from None


def path() -> Any:
    """An optional file path (``~`` expanded; ``""``, ``"."`` or ``"./"``: not set)."""

    def coerce(value: Any) -> Path | None:
        if not isinstance(value, str | Path):
            raise _Problem("must be a path", value)
        if "\x00" in str(value):
            raise _Problem("must not contain a NUL character")
        written = Path(value)
        if str(written) == ".":  # "", ".", "./": not set
            return None
        try:
            return written.expanduser()
        except RuntimeError as exc:  # "~nosuchuser/journal"
            raise _Problem(f"cannot expand {str(value)!r}: {exc}") from None

    return _field(None, _Kind(coerce, optional=True))


# ------------------------------------------------------------------- sections


class Section:
    """Base of a frozen dataclass section: every field declared with a kind is coerced and
    checked at construction; :meth:`_check` adds the checks across fields."""

    __slots__ = ()
    # the dataclass' own fields (set by the decorator); declared for the type checker
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        for item in dataclasses.fields(self):
            kind = item.metadata.get(_KIND)
            if kind is None:
                continue
            try:
                value = kind(getattr(self, item.name))
            except _Problem as exc:
                # a field kept out of the repr (an account id) keeps its value out of errors
                problems.append((item.name, str(exc) if item.repr else exc.why))
                continue
            except (ValueError, ArithmeticError) as exc:  # a `finish` check of words(), ...
                problems.append((item.name, str(exc) if item.repr else type(exc).__name__))
                continue
            object.__setattr__(self, item.name, value)
        if not problems:
            problems.extend(self._check())
        if problems:
            raise SettingError(problems)

    def _check(self) -> list[tuple[str, str]]:
        """Checks across fields, once each field is valid: ``[(field, why), ...]``."""
        return []

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(item.name for item in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Self:
        """Build from a TOML table or a dict of overrides; an unknown key is a SettingError."""
        if not isinstance(values, Mapping):
            raise SettingError([("<section>", f"must be a table (got {_shown(values)})")])
        known = cls.field_names()
        unknown = sorted(str(key) for key in values if key not in known)
        if unknown:
            raise SettingError(
                [(key, f"unknown key; known: {', '.join(sorted(known))}") for key in unknown]
            )
        return cls(**values)

    def replaced(self, **updates: Any) -> Self:
        """A copy with some values replaced, checked again."""
        return dataclasses.replace(self, **updates)

    def as_dict(self) -> dict[str, Any]:
        """Every field's value (Python types)."""
        return {name: getattr(self, name) for name in self.field_names()}

    def as_json(self) -> dict[str, Any]:
        """Every field's value in JSON types (tuples as lists, paths as strings)."""
        out: dict[str, Any] = {}
        for name in self.field_names():
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out
