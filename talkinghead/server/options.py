"""GenerateConfig <-> flat, validated request options, built from the config dataclasses.

Every scalar field of `GenerateConfig` and of the dataclasses nested in it (`render`, `motion`, and
any added later) becomes an option named by its path ("fps", "render.size", "motion.seed"); its
default and help text come from config.py. A request may also use the bare field name
("seed") when only one option has it. Numbers get bounds (known fields below, generous ones
otherwise) so that no request can ask for an absurd amount of work.
"""

from __future__ import annotations

import math
import re
import typing
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, Literal, Mapping

from ..config import GenerateConfig, option_help

# Bounds of the known numeric options: (minimum, maximum).
KNOWN_BOUNDS: dict[str, tuple[float, float]] = {
    "fps": (1, 60),
    "crf": (0, 51),
    "render.size": (64, 1024),
    "motion.seed": (0, 2**31 - 1),
    "motion.blink_rate": (0, 60),
    "motion.head_amplitude": (0, 3),
    "motion.head_speed": (0, 3),
    "motion.mouth_amplitude": (0, 3),
    "motion.lookahead_frames": (0, 2),  # RuleBasedAudioMotion anticipates at most 2 frames
}
# Bounds by name ending, for fields added later that follow the config's naming.
SUFFIX_BOUNDS: dict[str, tuple[float, float]] = {"_gate": (0, 1), "_amplitude": (0, 3), "_scale": (0, 3),
                                                 "_intensity": (0, 1.5), "distance": (0.5, 2)}
GENERIC_FLOAT_BOUND = 1000.0  # |value| limit of a float option not listed above
GENERIC_INT_BOUND = 2**31 - 1
MAX_TEXT_OPTION_CHARS = 100
# internal processing detail; a file path (requests never name files on the server's disk)
HIDDEN_OPTIONS = frozenset({"chunk_seconds", "motion.mouth_model"})
# Options that only act with a driving video, which the server does not take.
VIDEO_ONLY_OPTIONS = re.compile(r"(_gate|video_amplitude|^mix\.reference)$")
# Shown first in the page, in this order; the rest follow in config order.
COMMON_OPTIONS = ("motion.seed", "motion.blink_rate", "motion.head_amplitude", "motion.mouth_amplitude",
                  "motion.lookahead_frames")


class OptionError(ValueError):
    """A request option is unknown, of the wrong type or out of range (message says which and why)."""


@dataclass(frozen=True)
class Option:
    """One user-settable config field."""

    name: str  # dotted path from GenerateConfig, e.g. "motion.seed"
    kind: str  # "int" | "float" | "bool" | "choice" | "text"
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None
    nullable: bool = False  # None (an empty field) is allowed and means "not set"
    section: str = ""  # the nested config it belongs to ("motion", "render", ...; "" for GenerateConfig's own)

    @property
    def label(self) -> str:
        """Human name: "motion.blink_rate" -> "Blink rate"."""
        return self.name.rsplit(".", 1)[-1].replace("_", " ").capitalize()

    def as_json(self) -> dict:
        """The option for the API and the page."""
        return {"name": self.name, "label": self.label, "kind": self.kind, "default": self.default,
                "help": self.help, "minimum": self.minimum, "maximum": self.maximum,
                "choices": list(self.choices) if self.choices is not None else None,
                "nullable": self.nullable, "section": self.section, "common": self.name in COMMON_OPTIONS}

    def parse(self, value: Any) -> Any:
        """Validate and convert a request value (JSON value or form string)."""
        if self.nullable and (value is None or value == ""):
            return None
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, (str, int)) and str(value).lower() in ("true", "1", "false", "0"):
                return str(value).lower() in ("true", "1")
            raise OptionError(f"option '{self.name}' must be true or false, got {value!r}")
        if self.kind == "choice":
            if value not in self.choices:
                raise OptionError(f"option '{self.name}' must be one of {', '.join(map(str, self.choices))}; got {value!r}")
            return value
        if self.kind == "text":
            if not isinstance(value, str) or len(value) > MAX_TEXT_OPTION_CHARS:
                raise OptionError(f"option '{self.name}' must be a string of at most {MAX_TEXT_OPTION_CHARS} characters")
            return value
        number = _number(self.name, value)
        if self.kind == "int":
            if number != int(number):
                raise OptionError(f"option '{self.name}' must be a whole number, got {value!r}")
            number = int(number)
        if not self.minimum <= number <= self.maximum:
            raise OptionError(f"option '{self.name}' = {number} is out of range: use {_fmt(self.minimum)} to {_fmt(self.maximum)}")
        return number


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise OptionError(f"option '{name}' must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"option '{name}' must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise OptionError(f"option '{name}' must be a finite number, got {value!r}")
    return number


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _bounds(name: str, generic: float) -> tuple[float, float]:
    if name in KNOWN_BOUNDS:
        return KNOWN_BOUNDS[name]
    for suffix, bounds in SUFFIX_BOUNDS.items():
        if name.endswith(suffix):
            return bounds
    return -generic, generic


def _option_for(name: str, hint: Any, default: Any, help_text: str) -> Option | None:
    args = typing.get_args(hint)
    if type(None) in args and len(args) == 2:  # `X | None`
        inner = _option_for(name, next(a for a in args if a is not type(None)), default, help_text)
        return replace(inner, nullable=True) if inner is not None else None
    if typing.get_origin(hint) is Literal:
        return Option(name, "choice", default, help_text, choices=typing.get_args(hint))
    if hint is bool:
        return Option(name, "bool", default, help_text)
    if hint is int:
        lo, hi = _bounds(name, GENERIC_INT_BOUND)
        return Option(name, "int", default, help_text, lo, hi)
    if hint is float:
        lo, hi = _bounds(name, GENERIC_FLOAT_BOUND)
        return Option(name, "float", default, help_text, lo, hi)
    if hint is str:
        return Option(name, "text", default, help_text)
    return None  # tuples, arrays, ...: not settable from a request


def config_options(cls: type = GenerateConfig, instance: Any = None, prefix: str = "") -> list[Option]:
    """Every settable scalar field of `cls` and its nested config dataclasses, with its default."""
    instance = instance if instance is not None else cls()
    hints = typing.get_type_hints(cls)
    helps = option_help(cls)
    section = prefix.rstrip(".")
    found, nested = [], []
    for f in fields(cls):
        name = prefix + f.name
        value = getattr(instance, f.name)
        if name in HIDDEN_OPTIONS or VIDEO_ONLY_OPTIONS.search(name):
            continue
        if is_dataclass(value):
            nested.extend(config_options(type(value), value, name + "."))
            continue
        option = _option_for(name, hints.get(f.name), value, helps.get(f.name, ""))
        if option is not None:
            found.append(replace(option, section=section))
    return found + nested  # a config's own fields first, then its nested configs'



def options_by_name() -> dict[str, Option]:
    """Full name -> Option, plus the bare field name where it is unambiguous."""
    options = config_options()
    table = {o.name: o for o in options}
    leaves: dict[str, list[Option]] = {}
    for o in options:
        leaves.setdefault(o.name.rsplit(".", 1)[-1], []).append(o)
    for leaf, same in leaves.items():
        if len(same) == 1 and leaf not in table:
            table[leaf] = same[0]
    return table


def parse_options(values: Mapping[str, Any] | None,
                  bounds: Mapping[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    """Request options {name: value} -> validated {full name: value}; `bounds` can tighten ranges."""
    table = options_by_name()
    chosen: dict[str, Any] = {}
    for key, value in (values or {}).items():
        option = table.get(key)
        if option is None:
            known = ", ".join(o.name for o in config_options())
            raise OptionError(f"unknown option '{key}': known options are {known}")
        parsed = option.parse(value)
        lo, hi = (bounds or {}).get(option.name, (None, None))
        if lo is not None and not lo <= parsed <= hi:
            raise OptionError(f"option '{option.name}' = {parsed} is out of range here: use {_fmt(lo)} to {_fmt(hi)}")
        chosen[option.name] = parsed
    return chosen


def build_config(values: Mapping[str, Any] | None, bounds: Mapping[str, tuple[float, float]] | None = None,
                 base: GenerateConfig = GenerateConfig()) -> GenerateConfig:
    """Request options {name: value} -> GenerateConfig (OptionError says what is wrong)."""
    chosen = parse_options(values, bounds)
    try:
        return _apply(base, chosen, "")
    except (TypeError, ValueError) as exc:  # a config dataclass' own validation
        raise OptionError(f"invalid options: {exc}") from None


def _apply(config: Any, chosen: dict[str, Any], prefix: str) -> Any:
    changes = {}
    for f in fields(config):
        name = prefix + f.name
        value = getattr(config, f.name)
        if is_dataclass(value):
            nested = _apply(value, chosen, name + ".")
            if nested is not value:
                changes[f.name] = nested
        elif name in chosen:
            changes[f.name] = chosen[name]
    return replace(config, **changes) if changes else config
