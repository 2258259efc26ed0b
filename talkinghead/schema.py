"""The walker over the config schema (config.py): every option as an `OptionSpec`, values parsed from
text or JSON, configs changed by option path, and the CLI's flags built from the same specs.

The CLI (`add_config_arguments`, `config_from_args`), the server (`server/options.py`) and eval's
`--variant` (`parse_settings`) all go through here, so an option added to a config dataclass appears
in each of them with one default, one set of choices and one range.
"""

from __future__ import annotations

import argparse
import typing
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, Literal, Mapping

from .config import ConfigError, GenerateConfig, UnknownOptionError, check_value, field_default, fmt

TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
MAX_NUMBER_CHARS = 40  # longer numeric text is refused before conversion (no 5,000-digit integers)


@dataclass(frozen=True)
class OptionSpec:
    """One option: a scalar field of GenerateConfig or of a config nested in it."""

    path: str  # dotted path from GenerateConfig: "motion.seed"
    hint: Any  # the field's type
    meta: Mapping[str, Any]  # the field's schema (config.option)
    default: Any

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def section(self) -> str:
        return self.path.rpartition(".")[0]

    @property
    def nullable(self) -> bool:
        return type(None) in typing.get_args(self.hint)

    @property
    def base_type(self) -> Any:
        args = typing.get_args(self.hint)
        return next(a for a in args if a is not type(None)) if self.nullable else self.hint

    @property
    def kind(self) -> str:
        """"int", "float", "bool", "choice" or "text"."""
        base = self.base_type
        if typing.get_origin(base) is Literal:
            return "choice"
        return {int: "int", float: "float", bool: "bool"}.get(base, "text")

    @property
    def choices(self) -> tuple | None:
        return typing.get_args(self.base_type) if self.kind == "choice" else None

    @property
    def range(self) -> tuple[float, float] | None:
        return self.meta.get("range")

    @property
    def help(self) -> str:
        return self.meta.get("help", "")

    @property
    def unit(self) -> str:
        return self.meta.get("unit", "")

    @property
    def internal(self) -> bool:
        return bool(self.meta.get("internal"))

    @property
    def needs_driving(self) -> bool:
        return bool(self.meta.get("needs_driving"))

    @property
    def group(self) -> tuple[str, str] | None:
        return self.meta.get("group")

    @property
    def flag(self) -> str:
        """How the CLI sets it: "--seed", or "--gate mouth=" for a grouped option."""
        if self.group:
            return f"{self.group[0]} {self.group[1]}="
        return self.meta.get("flag") or "--" + self.name.replace("_", "-")

    def default_text(self) -> str:
        """The default as a person reads it."""
        if self.meta.get("default_text"):
            return self.meta["default_text"]
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)

    def allowed(self) -> str:
        """What values it takes: "0 to 60 per minute", "one of speech, loudness", ..."""
        if self.kind == "choice":
            return "one of " + ", ".join(map(str, self.choices))
        if self.kind == "bool":
            return "true or false"
        if self.range is not None:
            unit = f" {self.unit}" if self.unit else ""
            words = "".join(f", {w}" for w in self.meta.get("aliases", {}))
            return f"{fmt(self.range[0])} to {fmt(self.range[1])}{unit}{words}"
        return self.meta.get("allowed") or "text"

    def parse(self, raw: Any) -> Any:
        """A value from text (CLI, eval, form field) or JSON -> the field's value, checked (ConfigError)."""
        value = self._convert(raw)
        problem = check_value(self.hint, self.meta, value)
        if problem:
            raise ConfigError(self.path, raw, problem)
        return value

    def _convert(self, raw: Any) -> Any:
        if isinstance(raw, str):
            text = raw.strip()
            if self.nullable and text.lower() in ("", "none", "null"):
                return None
            if text.lower() in self.meta.get("aliases", {}):
                return self.meta["aliases"][text.lower()]
            return self._from_text(text)
        if self.kind == "float" and isinstance(raw, int) and not isinstance(raw, bool):
            return float(raw)
        return raw  # JSON values are already typed; check_value judges them

    def _from_text(self, text: str) -> Any:
        kind = self.kind
        if kind == "bool":
            lowered = text.lower()
            return True if lowered in TRUE_WORDS else False if lowered in FALSE_WORDS else text
        if kind in ("int", "float"):
            if len(text) > MAX_NUMBER_CHARS:
                return text  # refused by check_value as not a number
            try:
                return int(text) if kind == "int" else float(text)
            except ValueError:
                return text
        if kind == "choice":
            lowered = text.lower()
            return lowered if lowered in self.choices else text
        return text


def option_specs(cls: type | None = None, prefix: str = "") -> list[OptionSpec]:
    """Every scalar field of `cls` (GenerateConfig) and of the configs nested in it, in declaration order."""
    cls = GenerateConfig if cls is None else cls
    hints = typing.get_type_hints(cls)
    specs = []
    for f in fields(cls):
        default = field_default(f)
        if is_dataclass(default):
            specs.extend(option_specs(type(default), f"{prefix}{f.name}."))
        else:
            specs.append(OptionSpec(prefix + f.name, hints[f.name], f.metadata, default))
    return specs


def specs_by_name(specs: list[OptionSpec] | None = None) -> dict[str, OptionSpec]:
    """Path -> spec, plus the bare field name where only one option has it ("seed")."""
    specs = option_specs() if specs is None else specs
    table = {s.path: s for s in specs}
    leaves: dict[str, list[OptionSpec]] = {}
    for s in specs:
        leaves.setdefault(s.name, []).append(s)
    for leaf, same in leaves.items():
        if len(same) == 1 and leaf not in table:
            table[leaf] = same[0]
    return table


def path_value(config: Any, path: str) -> Any:
    """The value of option `path` ("motion.seed") in `config`."""
    for part in path.split("."):
        config = getattr(config, part)
    return config


def with_values(config: Any, values: Mapping[str, Any], prefix: str = "") -> Any:
    """`config` with {path: value} set (values already parsed); constructing it validates them."""
    changes = {}
    for f in fields(config):
        current = getattr(config, f.name)
        path = prefix + f.name
        if is_dataclass(current):
            inner = {k: v for k, v in values.items() if k.startswith(path + ".")}
            if inner:
                changes[f.name] = with_values(current, inner, path + ".")
        elif path in values:
            changes[f.name] = values[path]
    unknown = [k for k in values if k.count(".") == prefix.count(".") and not any(
        k == prefix + f.name or k.startswith(prefix + f.name + ".") for f in fields(config))]
    if unknown:
        raise UnknownOptionError(unknown[0], values[unknown[0]], "see `talkinghead generate --help`")
    return replace(config, **changes) if changes else config


def parse_settings(items: Mapping[str, Any], base: GenerateConfig | None = None) -> GenerateConfig:
    """{option name or path: text or JSON value} -> `base` (the defaults) with them set (ConfigError on any problem)."""
    base = GenerateConfig() if base is None else base
    table = specs_by_name()
    parsed = {}
    for key, raw in items.items():
        spec = table.get(key.strip())
        if spec is None:
            raise UnknownOptionError(key.strip(), raw, "options are " + ", ".join(s.path for s in option_specs()))
        parsed[spec.path] = spec.parse(raw)
    return with_values(base, parsed)


# ------------------------------------------------------------------------------------------------
# the command line
# ------------------------------------------------------------------------------------------------

DEST_PREFIX = "option:"
METAVARS = {"int": "N", "float": "X", "text": "TEXT"}  # argparse dest of a schema flag: "option:motion.seed"


def flag_help(spec: OptionSpec) -> str:
    """--help text: what it does, its default and what it takes."""
    if spec.kind == "bool":
        return f"{spec.help} (default: {spec.default_text()})".replace("%", "%%")
    return f"{spec.help} (default: {spec.default_text()}; {spec.allowed()})".replace("%", "%%")


def add_config_arguments(parser: argparse.ArgumentParser, specs: list[OptionSpec] | None = None) -> None:
    """A flag per schema option (grouped ones share a repeatable `--group key=value` flag)."""
    specs = [s for s in (option_specs() if specs is None else specs) if not s.internal]
    groups: dict[str, list[OptionSpec]] = {}
    for spec in specs:
        if spec.group:
            groups.setdefault(spec.group[0], []).append(spec)
        elif spec.kind == "bool":
            parser.add_argument(spec.flag, dest=DEST_PREFIX + spec.path, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=flag_help(spec))
        else:
            metavar = "{" + ",".join(spec.choices) + "}" if spec.kind == "choice" else METAVARS[spec.kind]
            parser.add_argument(spec.flag, dest=DEST_PREFIX + spec.path, default=argparse.SUPPRESS,
                                metavar=metavar, help=flag_help(spec))
    for flag, members in groups.items():
        keys = ", ".join(f"{m.group[1]} ({m.help}; default {m.default_text()})" for m in members)
        parser.add_argument(flag, dest=DEST_PREFIX + flag, action="append", default=[], metavar="NAME=VALUE",
                            help=f"repeatable; NAME is one of: {keys}; VALUE {members[0].allowed()}".replace("%", "%%"))


def config_from_args(args: argparse.Namespace, base: GenerateConfig | None = None,
                     specs: list[OptionSpec] | None = None) -> GenerateConfig:
    """The parsed CLI flags -> `base` (the defaults) with them set; a ConfigError names the flag."""
    base = GenerateConfig() if base is None else base
    specs = option_specs() if specs is None else specs
    values: dict[str, Any] = {}
    by_group = {(s.group[0], s.group[1]): s for s in specs if s.group}
    for key, given in vars(args).items():
        if not key.startswith(DEST_PREFIX):
            continue
        target = key[len(DEST_PREFIX):]
        if target.startswith("--"):
            for item in given:
                name, sep, raw = item.partition("=")
                spec = by_group.get((target, name.strip().lower()))
                if spec is None or not sep:
                    keys = ", ".join(k for g, k in by_group if g == target)
                    raise ConfigError(target, item, f"use {target} NAME=VALUE with NAME one of {keys}")
                values[spec.path] = _parse_for_cli(spec, raw, f"{target} {name.strip()}")
        else:
            spec = next(s for s in specs if s.path == target)
            values.update(_split_suffix(spec, given, specs))
    return with_values(base, values)


def _split_suffix(spec: OptionSpec, given: Any, specs: list[OptionSpec]) -> dict[str, Any]:
    """{path: value} for one flag; "NAME:X" sets a sibling too where the schema says so (--emotion happy:0.8)."""
    suffix = spec.meta.get("suffix_field")
    if suffix and isinstance(given, str) and ":" in given:
        head, _, tail = given.partition(":")
        sibling = next(s for s in specs if s.path == f"{spec.section}.{suffix}")
        return {spec.path: _parse_for_cli(spec, head, spec.flag),
                sibling.path: _parse_for_cli(sibling, tail, f"{spec.flag} NAME:")}
    return {spec.path: _parse_for_cli(spec, given, spec.flag)}


def _parse_for_cli(spec: OptionSpec, raw: Any, flag: str) -> Any:
    try:
        return spec.parse(raw)
    except ConfigError as exc:
        raise ConfigError(flag, raw, exc.allowed) from None


# ------------------------------------------------------------------------------------------------
# documentation
# ------------------------------------------------------------------------------------------------


def options_table() -> str:
    """The README's options table (Markdown): CLI flag, API name, default, allowed values, what it does."""
    rows = ["| CLI flag | Python / API name | default | allowed | what it does |", "|---|---|---|---|---|"]
    for spec in option_specs():
        if spec.internal:
            continue
        flag = f"`{spec.flag}VALUE`" if spec.group else f"`{spec.flag}`"
        if spec.kind == "bool":
            flag = f"`{spec.flag}` / `--no-{spec.flag[2:]}`"
        rows.append(f"| {flag} | `{spec.path}` | {spec.default_text()} | {spec.allowed()} | {spec.help} |")
    return "\n".join(rows) + "\n"
