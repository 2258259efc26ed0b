"""Pitch tracking and the prosody it drives: brows rise with pitch, the head nods on stressed syllables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkinghead.face import landmarks as L
from talkinghead.audio.features import SAMPLE_RATE, extract_features
from talkinghead.config import MotionConfig
from talkinghead.motion.audio_rules import RuleBasedAudioMotion
from talkinghead.motion.prosody import NOD_DEG, ProsodyTracker
from talkinghead.motion.types import HEAD_FIELDS, Motion

FPS = 25
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
BROW = L.BLENDSHAPE_INDEX["browInnerUp"]
PITCH = HEAD_FIELDS.index("pitch")


def voiced(f0: np.ndarray, level: np.ndarray) -> np.ndarray:
    """A buzzy vowel-like sound: 8 harmonics of a per-sample f0 (Hz) at a per-sample amplitude."""
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    wave = sum(np.sin(k * phase) / k for k in range(1, 9))
    return (0.1 * level * wave).astype(np.float32)


def per_sample(values_and_seconds: list[tuple[float, float]]) -> np.ndarray:
    return np.concatenate([np.full(int(s * SAMPLE_RATE), v) for v, s in values_and_seconds])


@pytest.mark.parametrize("f0", [75.0, 120.0, 210.0, 380.0, 550.0])
def test_pitch_of_a_harmonic_sound_within_half_a_percent(f0):
    feats = extract_features(voiced(np.full(SAMPLE_RATE, f0), np.ones(SAMPLE_RATE)), FPS)
    inner = feats.pitch_hz[2:-2]
    assert np.all(np.abs(inner - f0) < 0.005 * f0)


def test_noise_and_silence_have_no_pitch():
    noise = (np.random.default_rng(0).standard_normal(SAMPLE_RATE) * 0.05).astype(np.float32)
    assert (extract_features(noise, FPS).pitch_hz == 0).all()
    assert (extract_features(np.zeros(SAMPLE_RATE, np.float32), FPS).pitch_hz == 0).all()


def run_rules(audio: np.ndarray) -> Motion:
    source = RuleBasedAudioMotion(MotionConfig(head_amplitude=1.0))
    source.start(np.zeros(L.N_BLENDSHAPES, np.float32), FPS)
    feats = extract_features(audio, FPS)
    return Motion.concat([source.push(feats), source.flush()])


def test_brows_rise_with_pitch_and_relax_after():
    # 2 s at 120 Hz, 1 s six semitones higher, 2 s back at 120 Hz, same loudness throughout
    f0 = per_sample([(120.0, 2.0), (120.0 * 2 ** 0.5, 1.0), (120.0, 2.0)])
    motion = run_rules(voiced(f0, np.ones(len(f0))))
    brow = motion.expression[:, BROW]
    before, high, after = brow[25:50].mean(), brow[55:75].mean(), brow[110:].mean()
    assert high > before + 0.1 and high > after + 0.1
    flat = run_rules(voiced(np.full(len(f0), 120.0), np.ones(len(f0)))).expression[:, BROW]
    assert flat.max() < 0.02  # a monotone voice leaves the brows where they are


def test_stressed_syllables_nod_and_a_flat_voice_does_not():
    # syllables 0.3 s apart; every third is 9 dB louder and two semitones higher
    parts_f0, parts_level = [], []
    for k in range(15):
        stressed = k % 3 == 2
        parts_f0 += [(150.0 * (2 ** (2 / 12) if stressed else 1.0), 0.2), (150.0, 0.1)]
        parts_level += [(2.8 if stressed else 1.0, 0.2), (0.0, 0.1)]
    audio = voiced(per_sample(parts_f0), per_sample(parts_level))
    head_pitch = run_rules(audio).head[:, PITCH]
    flat = voiced(np.full(len(audio), 150.0), per_sample([(1.0, 0.2), (0.0, 0.1)] * 15))
    flat_pitch = run_rules(flat).head[:, PITCH]
    stressed_onsets = [int((k * 0.3) * FPS) for k in range(15) if k % 3 == 2]
    nods = [head_pitch[s:s + 12].max() - flat_pitch[s:s + 12].max() for s in stressed_onsets]
    assert np.median(nods) > 0.4 * NOD_DEG


def test_octave_errors_do_not_move_the_brows():
    tracker = ProsodyTracker(FPS)
    brows = [tracker.update(-20.0, 120.0, True)[0] for _ in range(50)]
    brows += [tracker.update(-20.0, 240.0 if i % 7 == 3 else 120.0, True)[0] for i in range(50)]
    assert max(brows) < 0.02


@pytest.mark.skipif(not REAL.is_dir(), reason="needs ../shared/data/real (the project's real clips)")
def test_real_speech_pitch_is_in_the_speakers_range_and_brows_move_more_in_speech():
    from talkinghead.io import load_audio

    audio = load_audio(REAL / "musetalk_eng.wav", SAMPLE_RATE)[:20 * SAMPLE_RATE]
    feats = extract_features(audio, FPS)
    pitch = feats.pitch_hz[feats.pitch_hz > 0]
    assert len(pitch) > 0.4 * len(feats)  # most of a talker's frames are voiced
    assert 80 < np.median(pitch) < 250  # an adult voice
    motion = run_rules(audio)
    speech = feats.loudness_db > -35
    brow = motion.expression[:, BROW]
    assert brow[speech].std() > 0.01
    assert brow[speech].mean() > brow[~speech].mean()
