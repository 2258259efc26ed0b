"""Layering: lower layers never import higher ones (checked on the source with `ast`, imports inside
functions included).

    errors, face.landmarks, assets,    no talkinghead imports (io: only errors, config, outputs)
    disk_cache
    config, schema                     the option schema and its walker: only errors
    audio/, io, face/                  analysis / file edge: never motion, render, pipeline, cli
    motion/                            the motion sources and their contract: never render, pipeline, cli
    render/                            draws Motion: may use motion.types, never a motion source, pipeline, cli
    motion_files, direction            motion file formats: may use motion, never render, pipeline, cli
    pipeline                           the only module wiring motion sources to the renderer
    evaluation/, server/               applications on top of the pipeline: nothing below imports them
    data/                              training-data preparation: an application (uses evaluation's VAD)
    cli                                the entry point: nothing imports it (but __main__)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import talkinghead

PKG_DIR = Path(talkinghead.__file__).resolve().parent
PKG = "talkinghead"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    """Whether `name` (dotted) is a module or package of the source tree."""
    base = PKG_DIR.parent.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(source: str, module: str, is_package: bool) -> set[str]:
    """Every talkinghead module `source` (the text of `module`) imports, anywhere in the file."""
    found: set[str] = set()
    package = module.split(".") if is_package else module.split(".")[:-1]

    def add(base: str, names: list[str]) -> None:
        if not (base == PKG or base.startswith(PKG + ".")):
            return
        for n in names:  # `from pkg import submodule` imports the submodule
            if n != "*" and is_module(f"{base}.{n}"):
                found.add(f"{base}.{n}")
            else:
                found.add(base)

    def resolve_relative(level: int, name: str | None) -> str:
        if level > len(package):
            raise ValueError(f"relative import beyond the top package in {module}")
        parts = package[:len(package) - (level - 1)]
        return ".".join(parts + (name.split(".") if name else []))

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, [])
                if alias.name == PKG or alias.name.startswith(PKG + "."):
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = resolve_relative(node.level, node.module) if node.level else (node.module or "")
            add(base, [a.name for a in node.names])
        elif isinstance(node, ast.Call):  # importlib.import_module("talkinghead.x") / __import__("talkinghead.x")
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    target = arg.value
                    if target.startswith("."):
                        level = len(target) - len(target.lstrip("."))
                        target = resolve_relative(level, target.lstrip(".") or None)
                    add(target, [])
                    if target.startswith(PKG):
                        found.add(target)
    found.discard(module)
    return found


def all_modules() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(PKG_DIR.rglob("*.py")):
        name = module_name(path)
        graph[name] = imports_of(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
    return graph


GRAPH = all_modules()


def in_layer(module: str, *prefixes: str) -> bool:
    return any(module == f"{PKG}.{p}" or module.startswith(f"{PKG}.{p}.") for p in prefixes)


def violations(modules, forbidden) -> list[str]:
    return [f"{m} imports {dep}" for m in modules for dep in sorted(GRAPH[m]) if forbidden(dep)]


# ------------------------------------------------------------------------------------------------
# the checker itself
# ------------------------------------------------------------------------------------------------


def test_import_parser_sees_every_form():
    src = """
import os
import talkinghead.render.rig
from talkinghead.face import landmarks as L
from talkinghead import config
from ..audio import features
from .types import Motion
from ..io import load_image
def f():
    from ..render import renderer
    import importlib
    importlib.import_module("talkinghead.cli")
"""
    got = imports_of(src, "talkinghead.motion.audio_rules", is_package=False)
    assert got == {"talkinghead.render.rig", "talkinghead.face.landmarks", "talkinghead.config", "talkinghead.audio.features",
                   "talkinghead.motion.types", "talkinghead.io", "talkinghead.render.renderer", "talkinghead.cli"}
    pkg = imports_of("from . import types\nfrom ..face import landmarks\n", "talkinghead.motion", is_package=True)
    assert pkg == {"talkinghead.motion.types", "talkinghead.face.landmarks"}


def test_known_edges_are_found():
    """Guards against a checker that silently sees nothing."""
    assert len(GRAPH) >= 15
    assert {"talkinghead.render.renderer", "talkinghead.motion.compose", "talkinghead.io"} <= GRAPH["talkinghead.pipeline"]
    assert "talkinghead.errors" in GRAPH["talkinghead.io"]
    assert "talkinghead.pipeline" in GRAPH["talkinghead.cli"]  # imported inside a function
    assert "talkinghead.cli" in GRAPH["talkinghead.__main__"]
    assert "talkinghead.motion.types" in GRAPH["talkinghead.render.renderer"]


# ------------------------------------------------------------------------------------------------
# the rules
# ------------------------------------------------------------------------------------------------


def test_foundations_import_nothing_from_the_package():
    mods = [f"{PKG}.errors", f"{PKG}.face.landmarks", f"{PKG}.assets", f"{PKG}.disk_cache"]
    assert violations(mods, lambda dep: True) == []


def test_the_schema_sits_on_errors_only():
    assert GRAPH[f"{PKG}.config"] <= {f"{PKG}.errors"}
    assert GRAPH[f"{PKG}.schema"] <= {f"{PKG}.errors", f"{PKG}.config"}


def test_io_imports_only_errors_config_and_outputs():
    edge = {f"{PKG}.errors", f"{PKG}.config", f"{PKG}.outputs", f"{PKG}.media"}  # media: opening files
    # video.py: MP4 in and out, and background_writer.py, its encoding thread; both re-exported by io
    assert GRAPH[f"{PKG}.io"] <= edge | {f"{PKG}.video", f"{PKG}.background_writer"}
    assert GRAPH[f"{PKG}.video"] <= edge and GRAPH[f"{PKG}.media"] <= {f"{PKG}.errors"}
    assert GRAPH[f"{PKG}.background_writer"] <= {f"{PKG}.video", f"{PKG}.media"}
    assert GRAPH[f"{PKG}.outputs"] <= {f"{PKG}.errors"}


LOWER = ("errors", "config", "schema", "audio", "io", "video", "background_writer", "media", "outputs", "face",
         "disk_cache")


@pytest.mark.parametrize("layer", LOWER)
def test_lower_layers_do_not_import_higher_ones(layer):
    mods = [m for m in GRAPH if in_layer(m, layer)]
    assert mods
    assert violations(mods, lambda dep: in_layer(dep, "motion", "render", "pipeline", "cli")) == []


def test_motion_does_not_import_render_pipeline_or_cli():
    mods = [m for m in GRAPH if in_layer(m, "motion")]
    assert len(mods) >= 3
    assert violations(mods, lambda dep: in_layer(dep, "render", "pipeline", "cli")) == []


def test_render_uses_only_the_motion_contract():
    mods = [m for m in GRAPH if in_layer(m, "render")]
    assert len(mods) >= 3
    allowed_motion = {f"{PKG}.motion.types"}
    bad = violations(mods, lambda dep: (in_layer(dep, "motion") and dep not in allowed_motion)
                     or in_layer(dep, "pipeline", "cli"))
    assert bad == []


def _motion_sources() -> set[str]:
    return {m for m in GRAPH if in_layer(m, "motion") and m not in (f"{PKG}.motion", f"{PKG}.motion.types")}


def test_only_pipeline_wires_motion_sources_to_the_renderer():
    sources = _motion_sources()
    assert f"{PKG}.motion.audio_rules" in sources
    wiring = sorted(m for m, deps in GRAPH.items()
                    if deps & sources and any(in_layer(d, "render") for d in deps))
    assert wiring == [f"{PKG}.pipeline"]


def test_nothing_imports_the_cli():
    users = sorted(m for m, deps in GRAPH.items() if f"{PKG}.cli" in deps and m != f"{PKG}.__main__")
    assert users == []


@pytest.mark.parametrize("app", ["evaluation", "server", "batch", "data"])
def test_applications_sit_on_top(app):
    users = sorted(m for m, deps in GRAPH.items()
                   if any(in_layer(d, app) for d in deps) and not in_layer(m, app)
                   and not (app == "evaluation" and m == f"{PKG}.data.prepare"))  # labels speech with evaluation.voice
    assert users == []


def test_server_drives_the_pipeline_not_the_stages():
    mods = [m for m in GRAPH if in_layer(m, "server")]
    assert len(mods) >= 5
    assert violations(mods, lambda dep: in_layer(dep, "render", "motion", "cli")) == []


def test_motion_file_formats_sit_between_motion_and_pipeline():
    formats = [f"{PKG}.motion_files", f"{PKG}.direction"]
    assert all(m in GRAPH for m in formats)
    assert violations(formats, lambda dep: in_layer(dep, "render", "pipeline", "cli", "server", "evaluation")) == []
    below = [m for m in GRAPH if in_layer(m, "motion", *LOWER)]
    assert violations(below, lambda dep: dep in formats) == []


# ------------------------------------------------------------------------------------------------
# the README's architecture section is the layout
# ------------------------------------------------------------------------------------------------


def architecture_rows() -> list[tuple[str, str]]:
    """(first cell, job) of each row of the README's architecture table."""
    text = (PKG_DIR.parent / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Architecture"):]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 2:
            rows.append((cells[0], cells[1]))
    return rows


def test_readme_architecture_names_every_module_and_only_real_ones():
    rows = architecture_rows()
    assert len(rows) >= 20
    named: set[str] = set()
    for first, _ in rows:
        paths = [p for p in (s.strip("` ") for s in first.split(",")) if p]
        base = Path(paths[0]).parent
        for p in paths:
            full = Path(p) if "/" in p else base / p  # `mixer.py` after `talkinghead/motion/video_driven.py`
            assert (PKG_DIR.parent / full).exists(), f"README names {full}, which does not exist"
            named.add(str(full).rstrip("/"))
    for path in sorted(PKG_DIR.rglob("*.py")):
        rel = path.relative_to(PKG_DIR.parent)
        covered = str(rel) in named or any(str(parent) in named for parent in rel.parents)
        if path.name == "__init__.py":
            covered = covered or any(n.startswith(str(rel.parent) + "/") for n in named)
        assert covered, f"README's architecture section does not mention {rel}"



# ------------------------------------------------------------------------------------------------
# small files, small functions
# ------------------------------------------------------------------------------------------------

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(PKG_DIR)): n for p in PKG_DIR.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_is_over_60_lines():
    long = {}
    for path in PKG_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PKG_DIR)}:{node.name}"] = lines
    assert long == {}
