"""The config schema and its walker: one default, one set of choices and one range per option, seen the
same way by the CLI, the server's API and eval's --variant; the README's options table is generated
from it. Also the three bugs the schema fixed (issue 14), reproduced."""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from talkinghead import schema
from talkinghead.cli import _parser
from talkinghead.config import PRESETS, ConfigError, GenerateConfig, MotionConfig, option, preset_changes
from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.variants import parse_variant
from talkinghead.motion.controls import EMOTIONS
from talkinghead.schema import DEST_PREFIX, option_specs
from talkinghead.server import options as server_options

README = Path(__file__).resolve().parents[1] / "README.md"
SPECS = option_specs()


def generate_help() -> str:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["generate"].format_help()


def cli_config(*argv: str) -> GenerateConfig:
    args = _parser().parse_args(["generate", "--image", "x.png", "--audio", "y.wav", *argv])
    return schema.config_from_args(args)


def text_of(value) -> str:
    """A default written as a user would type it."""
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


# ------------------------------------------------------------------------------------------------
# every entry point agrees on every field
# ------------------------------------------------------------------------------------------------


def test_every_option_has_help_a_flag_and_a_checked_range():
    flags = [s.flag for s in SPECS]
    assert len(flags) == len(set(flags)), "two options share a CLI flag"
    for spec in SPECS:
        assert spec.help, f"{spec.path} has no help"
        if spec.kind in ("int", "float"):
            assert spec.range is not None, f"{spec.path} has no range"


@pytest.mark.parametrize("spec", [s for s in SPECS if not s.internal], ids=lambda s: s.path)
def test_cli_api_and_eval_agree_on_default_choices_and_range(spec):
    # the default: the CLI without the flag, eval and the API without the option
    assert schema.path_value(cli_config(), spec.path) == spec.default
    assert schema.path_value(parse_variant("v").config, spec.path) == spec.default
    api = {o.name: o.as_json() for o in server_options.config_options()}
    if server_options.served(spec):
        assert api[spec.path]["default"] == spec.default
        assert (api[spec.path]["minimum"], api[spec.path]["maximum"]) == (spec.range or (None, None))
        assert api[spec.path]["choices"] == (list(spec.choices) if spec.choices else None)
    # the default, typed back in, is accepted by each
    if spec.default is not None and spec.kind != "bool":
        typed = text_of(spec.default)
        argv = ([spec.group[0], f"{spec.group[1]}={typed}"] if spec.group else [spec.flag, typed])
        assert schema.path_value(cli_config(*argv), spec.path) == spec.default
        assert schema.path_value(parse_variant(f"v:{spec.path}={typed}").config, spec.path) == spec.default
        if server_options.served(spec):
            assert schema.path_value(server_options.build_config({spec.path: spec.default}, driving=spec.needs_driving), spec.path) == spec.default
    # a value outside the range (or not a choice) is refused by each, naming the option
    bad = "nowhere" if spec.kind in ("choice", "text") else (spec.range[1] + 1 if spec.range else None)
    if spec.kind == "text" and spec.meta.get("check") is None:
        return  # free text (a path)
    if bad is not None:
        argv = ([spec.group[0], f"{spec.group[1]}={bad}"] if spec.group else [spec.flag, str(bad)])
        with pytest.raises(ConfigError, match=re.escape(spec.group[0] if spec.group else spec.flag)):
            cli_config(*argv)
        with pytest.raises(ConfigError, match=re.escape(spec.path)):
            parse_variant(f"v:{spec.path}={bad}")
        if server_options.served(spec):
            with pytest.raises(server_options.OptionError, match=re.escape(spec.path)):
                server_options.build_config({spec.path: bad}, driving=spec.needs_driving)


def test_help_shows_every_flag_with_its_default_and_never_none():
    text = generate_help()
    for spec in SPECS:
        if not spec.internal:
            assert (spec.group[0] if spec.group else spec.flag) in text
    assert "(default: None)" not in text and "(default: )" not in text
    assert "free" in text  # a gaze choice the old help missed


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e9", "-1", "9" * 5000])
def test_meaningless_numbers_are_refused_by_the_cli(value):
    for flag in ("--head-amplitude", "--head-speed", "--mouth-amplitude", "--blink-rate", "--seed", "--crf"):
        with pytest.raises(ConfigError, match=f"^{flag} "):
            cli_config(f"{flag}={value}")


def test_the_python_api_refuses_bad_values_too():
    with pytest.raises(ConfigError, match=r"motion.head_amplitude nan is not allowed: use a number from 0 to 3"):
        MotionConfig(head_amplitude=math.nan)
    with pytest.raises(ConfigError, match="motion.seed True is not allowed: use a whole number"):
        MotionConfig(seed=True)
    with pytest.raises(ConfigError, match="crf 99 is not allowed: use a whole number from 0 to 51"):
        GenerateConfig(crf=99)


def test_emotion_with_intensity_and_gates_by_word():
    config = cli_config("--emotion", "happy:0.8", "--gate", "eyes=audio", "--amplitude", "head=0.5")
    assert (config.controls.emotion, config.controls.emotion_intensity) == ("happy", 0.8)
    assert config.mix.eyes_gate == 0.0 and config.mix.head_amplitude == 0.5
    with pytest.raises(ConfigError, match="--gate NAME=VALUE with NAME one of mouth, eyes"):
        cli_config("--gate", "ears=audio")
    with pytest.raises(ConfigError, match="--emotion NAME: '2' is not allowed: use a number from 0 to 1.5"):
        cli_config("--emotion", "happy:2")


def test_emotion_presets_cover_exactly_the_schemas_choices():
    spec = next(s for s in SPECS if s.path == "controls.emotion")
    assert set(EMOTIONS) == set(spec.choices)


# ------------------------------------------------------------------------------------------------
# adding an option means adding one field
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WiderMotion(MotionConfig):
    sway_style: Literal["calm", "lively"] = option("calm", "style of the idle sway")
    sway_depth: float = option(0.5, "depth of the idle sway", range=(0.0, 2.0))


@dataclass(frozen=True)
class WiderConfig(GenerateConfig):
    motion: WiderMotion = field(default_factory=WiderMotion)


def test_a_field_added_to_a_dataclass_appears_in_the_cli_the_api_and_eval(monkeypatch):
    monkeypatch.setattr(schema, "GenerateConfig", WiderConfig)
    monkeypatch.setattr(server_options, "GenerateConfig", WiderConfig)
    # CLI: a flag with help, default and range
    text = generate_help()
    assert "--sway-style {calm,lively}" in text and "--sway-depth" in text and "0 to 2" in text
    config = cli_config("--sway-style", "lively", "--sway-depth", "1.5")
    assert (config.motion.sway_style, config.motion.sway_depth) == ("lively", 1.5)
    with pytest.raises(ConfigError, match="--sway-depth '3' is not allowed: use a number from 0 to 2"):
        cli_config("--sway-depth", "3")
    # API: listed and parsed
    api = {o["name"]: o for o in (o.as_json() for o in server_options.config_options())}
    assert api["motion.sway_style"]["choices"] == ["calm", "lively"] and api["motion.sway_depth"]["maximum"] == 2.0
    assert server_options.build_config({"sway_style": "lively"}).motion.sway_style == "lively"
    with pytest.raises(server_options.OptionError, match="motion.sway_style"):
        server_options.build_config({"motion.sway_style": "wild"})
    # eval
    assert parse_variant("v:motion.sway_depth=0.25").config.motion.sway_depth == 0.25


# ------------------------------------------------------------------------------------------------
# the bugs the schema fixed, reproduced
# ------------------------------------------------------------------------------------------------


def test_eval_variants_set_fields_whose_default_is_none():
    """`--variant a:controls.gaze=left` crashed (TypeError: NoneType takes no arguments)."""
    assert parse_variant("a:controls.gaze=left").config.controls.gaze == "left"
    assert parse_variant("a:mix.mouth_gate=0.5").config.mix.mouth_gate == 0.5
    assert parse_variant("a:controls.gaze=0.2,-0.1,motion.seed=2").config.controls.gaze == "0.2,-0.1"
    with pytest.raises(TalkingHeadError, match="controls.gaze 'sideways' is not allowed"):
        parse_variant("a:controls.gaze=sideways")


def test_live_sessions_can_choose_the_speech_mouth():
    """The live preset is a named config the API serves, so the page can offer its default as a choice."""
    assert preset_changes("live") == {"motion.mouth": "loudness"}
    assert server_options.presets_json() == {"live": {"motion.mouth": "loudness"}}
    live = server_options.build_config({"motion.mouth": "speech"}, base=PRESETS["live"])
    assert live.motion.mouth == "speech"
    assert server_options.build_config({}, base=PRESETS["live"]).motion.mouth == "loudness"


def test_learned_mouth_rests_where_the_config_says():
    """LearnedMouthMotion defaulted to silence_pose='portrait' while MotionConfig says 'closed'."""
    from talkinghead.motion.learned_mouth import LearnedMouthMotion

    import inspect
    assert "silence_pose" not in inspect.signature(LearnedMouthMotion).parameters
    assert MotionConfig().silence_mouth == "closed"


def test_ranges_are_the_same_at_every_entry_point():
    """fps was 1-120 in the CLI and 1-60 in the server; size 64-4096 against 64-1024."""
    with pytest.raises(ConfigError, match="--fps '90' is not allowed: use a whole number from 1 to 60"):
        cli_config("--fps", "90")
    with pytest.raises(server_options.OptionError, match="'fps' = 90 is not allowed: use a whole number from 1 to 60"):
        server_options.build_config({"fps": 90})
    with pytest.raises(ConfigError, match="fps '90' is not allowed"):
        parse_variant("v:fps=90")
    # the server's own resource limit is tighter than the schema's range, and says so
    with pytest.raises(server_options.OptionError, match="out of range here: use 64 to 1024"):
        server_options.build_config({"render.size": 2048})


def test_negative_blink_rate_is_refused_not_clamped():
    with pytest.raises(ConfigError, match="--blink-rate '-3' is not allowed"):
        cli_config("--blink-rate", "-3")


# ------------------------------------------------------------------------------------------------
# the README
# ------------------------------------------------------------------------------------------------


def test_readme_options_table_is_the_schemas():
    text = README.read_text()
    start = text.index("<!-- options table: generated by talkinghead.schema.options_table -->\n")
    end = text.index("<!-- end of options table -->")
    table = text[start:end].split("\n", 1)[1]
    assert table == schema.options_table(), "README options table is stale: paste talkinghead.schema.options_table()"


def test_every_cli_flag_in_the_table_exists():
    table = schema.options_table()
    known = {a.option_strings[0] for a in _parser()._subparsers._group_actions[0].choices["generate"]._actions
             if a.option_strings}
    for flag in re.findall(r"`(--[a-z-]+)", table):
        if not flag.startswith("--no-"):
            assert flag in known, flag
    assert all(a.dest.startswith(DEST_PREFIX) or a.dest in {"help", "image", "audio", "text", "driving", "direction",
                                                              "motion_in", "out", "motion_out", "overwrite", "quiet"}
               for a in _parser()._subparsers._group_actions[0].choices["generate"]._actions)
