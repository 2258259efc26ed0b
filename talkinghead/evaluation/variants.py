"""Generator settings to evaluate side by side: named configs parsed from `--variant` text through the
config schema, with "{clip}" in text settings filled per clip (leave-one-clip-out models)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, is_dataclass, replace

from ..config import GenerateConfig
from ..errors import TalkingHeadError
from ..schema import parse_settings

REAL, FROZEN = "real", "frozen"  # the reference rows' names, which no variant may take
SETTING_SEPARATOR = re.compile(r",(?=\s*[A-Za-z_][\w.]*\s*=)")  # commas that start a new field=value
CLIP_PLACEHOLDER = "{clip}"  # in a text setting, replaced by the clip's name (e.g. a leave-one-clip-out model)


@dataclass(frozen=True)
class Variant:
    """A named generator setting (GenerateConfig) to evaluate; several run side by side."""

    name: str
    config: GenerateConfig = field(default_factory=GenerateConfig)


def parse_variant(text: str) -> Variant:
    """'NAME' or 'NAME:field=value,section.field=value' (options of the config schema) -> Variant."""
    name, _, settings = text.partition(":")
    name = name.strip()
    if not name or name in (REAL, FROZEN) or not name.replace("-", "").replace("_", "").isalnum():
        raise TalkingHeadError(f"variant name '{name}' must be letters, digits, - or _ (and not 'real' or 'frozen')")
    values = {}
    for item in filter(None, (s.strip() for s in SETTING_SEPARATOR.split(settings))):
        key, eq, value = item.partition("=")
        if not eq:
            raise TalkingHeadError(f"variant setting '{item}' must look like field=value, e.g. motion.seed=3")
        values[key.strip()] = value.strip()
    return Variant(name, parse_settings(values))


def _fill_clip(config, clip: str):
    changes = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if is_dataclass(value):
            changes[f.name] = _fill_clip(value, clip)
        elif isinstance(value, str) and CLIP_PLACEHOLDER in value:
            changes[f.name] = value.replace(CLIP_PLACEHOLDER, clip)
    return replace(config, **changes)


def for_clip(config: GenerateConfig, fps: float, clip: str) -> GenerateConfig:
    """The variant's config at the real clip's frame rate (so frame i of both is the same instant), with
    "{clip}" in text settings replaced by the clip's name."""
    return replace(_fill_clip(config, clip), fps=int(round(fps)))
