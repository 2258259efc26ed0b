"""Expression that follows the voice beyond the mouth: brows rise with pitch, the head nods on stressed syllables.

Per frame, causally (the output is identical for any chunking of the audio):

    pitch (AudioFeatures.pitch_hz, 0 when unvoiced) -> semitones against the speaker's running
        reference (a slow average of their voiced pitch), octave errors ignored
    -> brow raise: the pitch's rise above the reference, smoothed (fast up, slow down)
    -> stress: a voiced syllable louder than the running speech level and not below the reference
        pitch; each new stress starts a nod (head tilts down and back) scaled by how strong it is,
        at most one nod per NOD_REFRACTORY_S; nods fade when the voice stops (a still head in pauses).

People raise their brows on high-pitched, emphatic words and nod on stressed syllables (Cavé et al.
1996; Graf et al. 2002); the gains keep both subtle, as in conversational speech.
"""

from __future__ import annotations

import numpy as np

# speaker's pitch reference
PITCH_REFERENCE_S = 3.0  # time constant of the running average of voiced pitch (semitones)
OCTAVE_JUMP_ST = 7.0  # a voiced frame this far from the last voiced one is taken as a tracking error
# brows
BROW_PITCH_ST = (1.0, 6.0)  # brows start rising this many semitones above the reference, fully raised at the second
BROW_ATTACK, BROW_RELEASE = 0.3, 0.08  # per-frame smoothing up / down
# stress and nods
SPEECH_LEVEL_S = 1.0  # time constant of the running loudness of pitched (voiced) frames
STRESS_OVER_DB = (2.0, 8.0)  # a syllable this much louder than the running level starts / saturates a stress
STRESS_MIN_PITCH_ST = -1.0  # stressed syllables are not below the speaker's pitch reference (by more than this)
NOD_DEG = 1.5  # head pitch (degrees, down) of the strongest nod
NOD_S = 0.6  # a nod's duration (down and back, a raised cosine: it starts and ends at rest)
NOD_REFRACTORY_S = 0.7  # nods at most this often
NOD_SETTLE = 0.25  # per frame: how fast a nod fades once the voice stops (the head is still in pauses)


def semitones(hz: float, reference_hz: float = 100.0) -> float:
    """Pitch in semitones relative to reference_hz."""
    return 12.0 * float(np.log2(hz / reference_hz))


class ProsodyTracker:
    """Brow raise (0-1) and nod pitch (degrees) per frame from loudness and pitch (see module docstring)."""

    def __init__(self, fps: float):
        self.fps = float(fps)
        self._ref_rate = 1.0 - np.exp(-1.0 / (PITCH_REFERENCE_S * self.fps))
        self._level_rate = 1.0 - np.exp(-1.0 / (SPEECH_LEVEL_S * self.fps))
        self._reference: float | None = None  # semitones
        self._last_voiced: float | None = None
        self._level_db: float | None = None
        self._brow = 0.0
        self._stressed = False  # inside a stressed stretch (a new nod needs it to end first)
        self._nod_start = -np.inf  # frame
        self._nod_strength = 0.0
        self._voice = 0.0  # smoothed voice activity: nods fade with it
        self._frame = 0

    def update(self, loudness_db: float, pitch_hz: float, voiced: bool) -> tuple[float, float]:
        """Next frame -> (brow raise 0-1, nod pitch in degrees, positive = down)."""
        excursion = None
        if voiced and pitch_hz > 0:
            st = semitones(pitch_hz)
            if self._last_voiced is None or abs(st - self._last_voiced) < OCTAVE_JUMP_ST:
                self._reference = st if self._reference is None else self._reference + self._ref_rate * (st - self._reference)
                excursion = st - self._reference
            self._last_voiced = st
        # brows
        lo, hi = BROW_PITCH_ST
        target = float(np.clip((excursion - lo) / (hi - lo), 0.0, 1.0)) if excursion is not None else 0.0
        self._brow += (BROW_ATTACK if target > self._brow else BROW_RELEASE) * (target - self._brow)
        # stress -> nod
        stress = 0.0
        if excursion is not None:  # a voiced syllable nucleus: compare with the running level, then update it
            if self._level_db is not None and excursion >= STRESS_MIN_PITCH_ST:
                lo_db, hi_db = STRESS_OVER_DB
                stress = float(np.clip((loudness_db - self._level_db - lo_db) / (hi_db - lo_db), 0.0, 1.0))
            self._level_db = loudness_db if self._level_db is None else \
                self._level_db + self._level_rate * (loudness_db - self._level_db)
        if stress > 0 and not self._stressed and self._frame - self._nod_start >= NOD_REFRACTORY_S * self.fps:
            self._nod_start, self._nod_strength = self._frame, 0.5 + 0.5 * stress
        self._stressed = stress > 0
        self._voice += NOD_SETTLE * (float(voiced) - self._voice)
        age = (self._frame - self._nod_start) / self.fps
        nod = self._voice * NOD_DEG * self._nod_strength * 0.5 * float(1 - np.cos(2 * np.pi * age / NOD_S)) if 0 <= age < NOD_S else 0.0
        self._frame += 1
        return self._brow, nod
