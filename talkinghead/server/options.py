"""Request options <-> GenerateConfig, built from the config schema (talkinghead.schema).

Every option of the schema that a request can meaningfully set (not internal, not a path on the
server's disk) is offered by its path ("fps", "render.size", "motion.seed") or by its bare field name
where only one option has it ("seed"). Options that act only with a driving video (`needs_driving`:
the gates, `mix.reference`) are accepted only by a job that uploads one. Default, choices, range and
help all come from config.py; the server may only tighten a range (its own limits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..config import PRESETS, ConfigError, GenerateConfig, fmt, preset_changes, quote
from ..schema import OptionSpec, option_specs, specs_by_name, with_values

# Shown first in the page, in this order; the rest follow in schema order.
COMMON_OPTIONS = ("motion.seed", "motion.blink_rate", "motion.head_amplitude", "motion.mouth_amplitude",
                  "motion.lookahead_frames")
PATH_OPTIONS = frozenset({"motion.mouth_model", "motion.motion_model"})  # a file path: requests never name files on the server's disk
SERVER_BOUNDS = {"render.size": (64, 1024)}  # the server's own limits, tighter than the schema's ranges


class OptionError(ValueError):
    """A request option is unknown, of the wrong type or out of range (message says which and why)."""


@dataclass(frozen=True)
class Option:
    """One option as the API and the page see it."""

    spec: OptionSpec

    @property
    def name(self) -> str:
        return self.spec.path

    @property
    def default(self) -> Any:
        return self.spec.default

    def as_json(self) -> dict:
        """The option for /api/options and the page."""
        spec = self.spec
        lo, hi = spec.range if spec.range else (None, None)
        return {"name": spec.path, "label": spec.name.replace("_", " ").capitalize(), "kind": spec.kind,
                "default": spec.default, "help": spec.help, "minimum": lo, "maximum": hi, "unit": spec.unit,
                "choices": list(spec.choices) if spec.choices is not None else None, "allowed": spec.allowed(),
                "nullable": spec.nullable, "section": spec.section, "common": spec.path in COMMON_OPTIONS,
                "cli_flag": spec.flag, "needs_driving": spec.needs_driving}

    def parse(self, value: Any) -> Any:
        """Validate and convert a request value (JSON value or form string)."""
        try:
            return self.spec.parse(value)
        except ConfigError as exc:
            raise OptionError(f"option '{self.name}' = {quote(value)} is not allowed: {exc.allowed}") from None


def served(spec: OptionSpec) -> bool:
    """Whether requests may set this option."""
    return spec.meta.get("served", True) and not (spec.internal or spec.path in PATH_OPTIONS)


def config_options() -> list[Option]:
    """Every option a request may set, in schema order (a config's own fields, then its sections')."""
    specs = [s for s in option_specs() if served(s)]
    return [Option(s) for s in specs if not s.section] + [Option(s) for s in specs if s.section]


def options_by_name() -> dict[str, Option]:
    """Full name -> Option, plus the bare field name where it is unambiguous."""
    return {key: Option(spec) for key, spec in specs_by_name([s for s in option_specs() if served(s)]).items()}


def presets_json() -> dict[str, dict[str, Any]]:
    """Named configurations the server uses, as {preset: {option: value}} changes from the defaults."""
    return {name: preset_changes(name) for name in PRESETS if name != "default"}


def parse_options(values: Mapping[str, Any] | None, bounds: Mapping[str, tuple[float, float]] | None = None,
                  driving: bool = False) -> dict[str, Any]:
    """Request options {name: value} -> validated {full name: value}; `bounds` can tighten ranges;
    options that need a driving video are refused unless `driving` (the request has one)."""
    if values is not None and not isinstance(values, Mapping):
        raise OptionError("options must be a JSON object of {name: value}, e.g. {\"motion.seed\": 3}")
    table = options_by_name()
    chosen: dict[str, Any] = {}
    for key, value in (values or {}).items():
        option = table.get(key)
        if option is None:
            known = ", ".join(o.name for o in config_options())
            raise OptionError(f"unknown option {quote(key)}: known options are {known}")
        if option.spec.needs_driving and not driving:
            raise OptionError(f"option '{option.name}' acts only with a driving video: upload one as `driving` "
                              "(a job's multipart field), or leave the option out")
        parsed = option.parse(value)
        lo, hi = {**SERVER_BOUNDS, **(bounds or {})}.get(option.name, (None, None))
        if lo is not None and not lo <= parsed <= hi:
            raise OptionError(f"option '{option.name}' = {parsed} is out of range here: use {fmt(lo)} to {fmt(hi)}")
        chosen[option.name] = parsed
    return chosen


def build_config(values: Mapping[str, Any] | None, bounds: Mapping[str, tuple[float, float]] | None = None,
                 base: GenerateConfig | None = None, driving: bool = False) -> GenerateConfig:
    """Request options {name: value} -> `base` (the defaults) with them set (OptionError says what is wrong);
    `driving`: the request has a driving video (options that need one are refused otherwise)."""
    base = GenerateConfig() if base is None else base
    chosen = parse_options(values, bounds, driving)
    try:
        return with_values(base, chosen)
    except ConfigError as exc:
        raise OptionError(f"invalid options: {exc}") from None
