"""Controls (gaze, distance, emotion, expression scale, amplitudes) and direction files.

Each control is checked on what it is named for, measured on rendered frames re-detected by the
face landmarker: gaze moves the irises, distance changes the face size, happy raises the mouth
corners, surprised raises the brows, head amplitude scales the spread of head rotation.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from talkinghead.face import landmarks as L
from talkinghead.face import measure
from talkinghead.audio.features import extract_features
from talkinghead.config import ControlConfig, GenerateConfig, MixConfig
from talkinghead.direction import load_direction, parse_direction
from talkinghead.errors import TalkingHeadError
from talkinghead.face.expression import load_basis
from talkinghead.face.landmarker import FaceLandmarker
from talkinghead.face.pose import fit_similarity, rotation_to_euler
from talkinghead.motion.audio_rules import RuleBasedAudioMotion
from talkinghead.motion.controls import (ControlledMotion, ControlSchedule, apply_controls,
                                         control_defaults)
from talkinghead.motion.types import Motion

FPS = 25
SR = 16000


def schedule(controls: ControlConfig = ControlConfig(), mix: MixConfig = MixConfig(), direction=None) -> ControlSchedule:
    return ControlSchedule(control_defaults(controls, mix, 0.0), direction)


def still(portrait, controls: ControlConfig = ControlConfig()) -> Motion:
    """One frame of the portrait's rest pose with `controls` applied."""
    rest = portrait.face.blendshapes
    return apply_controls(Motion.rest(rest, 1), rest, np.zeros(1), schedule(controls))


def render_and_detect(pipeline, motion: Motion) -> list[np.ndarray]:
    """Landmarks (478, 3) of every rendered frame (IMAGE mode: each frame on its own)."""
    out = []
    with FaceLandmarker() as landmarker:
        for i in range(len(motion)):
            frame = pipeline.renderer.render_frame(motion.expression[i], motion.head[i], motion.gaze[i])
            faces = landmarker.detect(frame)
            assert faces, "no face re-detected in a rendered frame"
            out.append(faces[0].landmarks.astype(np.float64))
    return out


def iris_offset(lm: np.ndarray) -> np.ndarray:
    """Mean iris-centre offset of both eyes from the eye-corner midpoint, in eye widths (x right, y down)."""
    offsets = []
    for iris, outer, inner in ((L.IRIS_RIGHT[0], L.EYE_RIGHT_OUTER_CORNER, L.EYE_RIGHT_INNER_CORNER),
                               (L.IRIS_LEFT[0], L.EYE_LEFT_OUTER_CORNER, L.EYE_LEFT_INNER_CORNER)):
        middle = (lm[outer, :2] + lm[inner, :2]) / 2
        offsets.append((lm[iris, :2] - middle) / np.linalg.norm(lm[outer, :2] - lm[inner, :2]))
    return np.mean(offsets, 0)


def corner_height(lm: np.ndarray) -> float:
    """Mouth corners above the middle of the lips, in inter-ocular distances (larger = corners higher)."""
    corners = (lm[L.MOUTH_CORNER_LEFT, 1] + lm[L.MOUTH_CORNER_RIGHT, 1]) / 2
    middle = (lm[L.LIP_UPPER_INNER_MID, 1] + lm[L.LIP_LOWER_INNER_MID, 1]) / 2
    return float((middle - corners) / measure.interocular(lm))


def brow_height(lm: np.ndarray) -> float:
    """Brows above the eyes, in inter-ocular distances."""
    brows = lm[list(L.BROW_LEFT + L.BROW_RIGHT), 1].mean()
    eyes = lm[list(L.EYE_LEFT_LOOP + L.EYE_RIGHT_LOOP), 1].mean()
    return float((eyes - brows) / measure.interocular(lm))


# ------------------------------------------------------------------------------------------------
# measured on rendered output
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def control_faces(real_pipeline):
    """Re-detected landmarks of the portrait rendered with each control."""
    cases = {"neutral": ControlConfig(), "left": ControlConfig(gaze="left"), "right": ControlConfig(gaze="right"),
             "up": ControlConfig(gaze="up"), "down": ControlConfig(gaze="down"),
             "far": ControlConfig(distance=1.25), "near": ControlConfig(distance=0.8),
             "happy": ControlConfig(emotion="happy"), "surprised": ControlConfig(emotion="surprised"),
             "angry": ControlConfig(emotion="angry")}
    motion = Motion.concat([still(real_pipeline.portrait, c) for c in cases.values()])
    return dict(zip(cases, render_and_detect(real_pipeline, motion)))


def test_gaze_moves_the_irises(control_faces):
    base = iris_offset(control_faces["neutral"])
    left, right = iris_offset(control_faces["left"]) - base, iris_offset(control_faces["right"]) - base
    up, down = iris_offset(control_faces["up"]) - base, iris_offset(control_faces["down"]) - base
    assert left[0] < -0.04 and right[0] > 0.04, (left, right)  # eye widths, image directions
    assert up[1] < -0.01 and down[1] > 0.01, (up, down)


def test_distance_changes_the_face_size(control_faces):
    base = measure.interocular(control_faces["neutral"])
    assert measure.interocular(control_faces["far"]) / base == pytest.approx(1 / 1.25, abs=0.04)
    assert measure.interocular(control_faces["near"]) / base == pytest.approx(1 / 0.8, abs=0.05)


def test_happy_raises_the_mouth_corners(control_faces):
    assert corner_height(control_faces["happy"]) - corner_height(control_faces["neutral"]) > 0.03


def test_surprised_raises_and_angry_lowers_the_brows(control_faces):
    base = brow_height(control_faces["neutral"])
    assert brow_height(control_faces["surprised"]) - base > 0.03
    assert brow_height(control_faces["angry"]) - base < -0.02


def head_rotation_spread(pipeline, motion: Motion) -> np.ndarray:
    """Std (degrees) of re-detected yaw, pitch, roll over the rendered frames."""
    basis = load_basis()
    angles = [rotation_to_euler(fit_similarity(lm, basis.mean_shape).rotation)
              for lm in render_and_detect(pipeline, motion)]
    return np.std(np.array(angles), axis=0)


def test_head_amplitude_scales_the_rotation_spread(real_pipeline, real_file):
    from talkinghead.io import load_audio

    audio = load_audio(real_file("dreamtalk_spanish1.wav"))[: 4 * SR]
    features = extract_features(audio, FPS)
    rest = real_pipeline.portrait.face.blendshapes
    spreads = {}
    for amplitude in (1.0, 0.5):
        src = ControlledMotion(RuleBasedAudioMotion(), schedule(mix=MixConfig(head_amplitude=amplitude)))
        src.start(rest, FPS)
        motion = Motion.concat([src.push(features), src.flush()])[::4]  # every 4th frame is plenty
        spreads[amplitude] = head_rotation_spread(real_pipeline, motion)
    ratio = spreads[0.5].sum() / spreads[1.0].sum()
    assert spreads[1.0].sum() > 1.0, spreads
    assert 0.35 < ratio < 0.65, (spreads, ratio)


# ------------------------------------------------------------------------------------------------
# motion-level behaviour
# ------------------------------------------------------------------------------------------------


def speech_features(seconds: float = 3.0):
    t = np.arange(int(seconds * SR)) / SR
    audio = (0.3 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    return extract_features(audio, FPS)


def run(source, features, pieces=None) -> Motion:
    rest = np.full(L.N_BLENDSHAPES, 0.05, np.float32)
    source.start(rest, FPS)
    out, start = [], 0
    for n in pieces or [len(features)]:
        out.append(source.push(features_slice(features, start, start + n)))
        start += n
    out.append(source.flush())
    return Motion.concat(out)


def features_slice(f, a, b):

    return f.rows(a, b)


def test_default_controls_pass_motion_through_unchanged():
    features = speech_features()
    plain = run(RuleBasedAudioMotion(), features)
    controlled = run(ControlledMotion(RuleBasedAudioMotion(), schedule()), features)
    for k in ("expression", "head", "gaze"):
        np.testing.assert_array_equal(getattr(plain, k), getattr(controlled, k))


def test_controls_do_not_depend_on_chunking():
    direction = parse_direction([{"from": 0.5, "to": 1.5, "emotion": "happy"}, {"at": 2.0, "gaze": "left"}])
    controls = ControlConfig(distance=1.1, expression_scale=1.3)
    features = speech_features()
    whole = run(ControlledMotion(RuleBasedAudioMotion(), schedule(controls, direction=direction)), features)
    chunked = run(ControlledMotion(RuleBasedAudioMotion(), schedule(controls, direction=direction)), features,
                  [7, 1, 30, 13, len(features) - 51])
    for k in ("expression", "head", "gaze"):
        np.testing.assert_array_equal(getattr(whole, k), getattr(chunked, k))


def test_expression_scale_scales_changes_but_not_blinks():
    rest = np.full(L.N_BLENDSHAPES, 0.1, np.float32)
    motion = Motion.rest(rest + 0.2, 1)
    out = apply_controls(motion, rest, np.zeros(1), schedule(ControlConfig(expression_scale=0.5)))
    jaw, blink = L.BLENDSHAPE_INDEX["jawOpen"], L.BLENDSHAPE_INDEX["eyeBlinkLeft"]
    assert out.expression[0, jaw] == pytest.approx(0.2)
    assert out.expression[0, blink] == pytest.approx(0.3)


def test_bad_control_values_get_clear_errors():
    """Making the config validates it: one line naming the option, the value and what is allowed."""
    for fields, message in (({"emotion": "joyful"}, "controls.emotion 'joyful' is not allowed: use one of neutral"),
                            ({"gaze": "sideways"}, "controls.gaze 'sideways' is not allowed: use camera, left"),
                            ({"gaze": "0.9,0"}, "within \\+-0.5"),
                            ({"distance": 5.0}, "controls.distance 5.0 is not allowed: use a number from 0.5 to 2"),
                            ({"emotion_intensity": 3.0}, "use a number from 0 to 1.5")):
        with pytest.raises(TalkingHeadError, match=message):
            ControlConfig(**fields)
    with pytest.raises(TalkingHeadError, match="mix.eyes_gate 1.5 is not allowed: use a number from 0 to 1"):
        MixConfig(eyes_gate=1.5)


# ------------------------------------------------------------------------------------------------
# direction files
# ------------------------------------------------------------------------------------------------


def test_direction_spans_and_keyframes():
    d = parse_direction({"ease": 0.5, "events": [
        {"from": 2.0, "to": 4.0, "emotion": "happy", "intensity": 0.8},
        {"at": 5.0, "gaze": "left"},
        {"at": 7.0, "gaze": "free", "ease": 0.0}]})
    s = schedule(ControlConfig(emotion="sad", emotion_intensity=0.4), direction=d)
    t = np.array([1.0, 2.25, 3.0, 4.25, 4.6, 5.0, 5.6, 6.9, 7.1])
    np.testing.assert_allclose(s("emotion_happy", t), [0, 0.4, 0.8, 0.4, 0, 0, 0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(s("emotion_sad", t), [0.4, 0.2, 0, 0.2, 0.4, 0.4, 0.4, 0.4, 0.4], atol=1e-9)
    np.testing.assert_allclose(s("gaze_weight", t), [0, 0, 0, 0, 0, 0, 1, 1, 0], atol=1e-9)
    assert s("gaze_x", t)[6] == pytest.approx(-0.3)
    assert s("distance", t)[0] == 1.0  # not keyframed: the configured value


def test_yaml_and_json_direction_files_agree(tmp_path):
    events = [{"from": 2.0, "to": 4.0, "emotion": "happy"}, {"at": 5, "gaze": [0.1, -0.05], "distance": 1.2},
              {"at": 6, "head_gate": "audio", "mouth_amplitude": 0.5}]
    (tmp_path / "d.json").write_text(json.dumps({"events": events}))
    (tmp_path / "d.yaml").write_text("events:\n" + "".join(
        "  - {" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in e.items()) + "}\n" for e in events))
    a, b = load_direction(tmp_path / "d.json"), load_direction(tmp_path / "d.yaml")
    assert sorted(a.tracks) == sorted(b.tracks)
    for key in a.tracks:
        np.testing.assert_array_equal(a.tracks[key].times, b.tracks[key].times)
        np.testing.assert_array_equal(a.tracks[key].values, b.tracks[key].values)
    assert a.sample("head_gate", np.array([7.0]), 1.0)[0] == 0.0


@pytest.mark.parametrize("events, message", [
    ([{"at": 1, "smile": 1}], "event 1: unknown key 'smile'"),
    ([{"at": 1, "emotion": "joyful"}], "event 1: unknown emotion 'joyful'"),
    ([{"from": 3, "to": 2, "emotion": "happy"}], r"event 1: 'to' \(2 s\) must be after 'from' \(3 s\)"),
    ([{"from": 1, "emotion": "happy"}], "a span needs 'to'"),
    ([{"emotion": "happy"}], "give either 'at'"),
    ([{"at": -1, "emotion": "happy"}], "the time must be a number of seconds"),
    ([{"at": 1, "gaze": "sideways"}], "event 1: gaze 'sideways' is not understood"),
    ([{"at": 1, "intensity": 0.5}], "'intensity' needs 'emotion'"),
    ([{"at": 1}], "no control to change"),
    ([{"at": 1, "distance": 9}], "distance must be a number from 0.5 to 2"),
    ([{"from": 1, "to": 4, "emotion": "happy"}, {"at": 3, "emotion": "sad"}],
     r"event 2 changes emotion at 3 s while event 1 still does \(until 4.3 s\)"),
    ([{"at": 1, "mouth_gate": "both"}], "mouth_gate"),
    ("smile please", "expected a list of events"),
])
def test_malformed_direction_gets_a_clear_error(events, message):
    with pytest.raises(TalkingHeadError, match=message):
        parse_direction(events, "scene.json")


def test_unreadable_direction_files(tmp_path):
    (tmp_path / "d.yaml").write_text("events:\n  - {at: 1, emotion: happy\n")
    with pytest.raises(TalkingHeadError, match=r"not valid YAML \(line \d+\)"):
        load_direction(tmp_path / "d.yaml")
    with pytest.raises(TalkingHeadError, match="not found"):
        load_direction(tmp_path / "none.json")
    with pytest.raises(TalkingHeadError, match=r"must end in \.json, \.yaml or \.yml"):
        load_direction(tmp_path / "d.txt")


def test_direction_reaches_the_rendered_output(real_pipeline, real_file, tmp_path):
    """A direction file through generate: the smile is there during its span only."""
    import talkinghead
    from talkinghead.io import read_video_frames

    (tmp_path / "d.json").write_text(json.dumps([{"from": 0.4, "to": 0.8, "emotion": "happy", "ease": 0.0}]))
    config = replace(GenerateConfig(), render=real_pipeline.config.render,
                     motion=replace(real_pipeline.config.motion, head_amplitude=0.0))
    silence = np.zeros(int(1.2 * SR), np.float32)
    silence[::97] = 0.01  # audible enough to pass the silence check, too quiet to open the mouth
    out = tmp_path / "o.mp4"
    talkinghead.generate(real_file("hallo_ref7.jpg"), silence, out, config, direction=tmp_path / "d.json")
    frames = list(read_video_frames(out))
    with FaceLandmarker() as landmarker:
        heights = [corner_height(landmarker.detect(frames[i])[0].landmarks.astype(np.float64)) for i in (5, 15, 25)]
    assert heights[1] - heights[0] > 0.02 and heights[1] - heights[2] > 0.02, heights
