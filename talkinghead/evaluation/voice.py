"""Voice activity on the real audio (WebRTC's VAD), one flag per video frame.

The evaluation uses a detector independent of the generator's own energy gate, so the silence
metric does not grade the generator with its own ruler.
"""

from __future__ import annotations

import numpy as np

from ..audio.features import SAMPLE_RATE
from ..errors import TalkingHeadError

VAD_FRAME_SECONDS = 0.03  # WebRTC VAD accepts 10, 20 or 30 ms frames
VAD_AGGRESSIVENESS = 3  # 0-3: 3 calls the fewest non-speech frames speech (noisy rooms, music beds)


def voiced_frames(samples: np.ndarray, fps: float, n_frames: int | None = None) -> np.ndarray:
    """(n_frames,) bool: video frame i is voiced when most of its audio is speech to the VAD."""
    try:
        import webrtcvad
    except ImportError as exc:
        raise TalkingHeadError("the evaluation needs the 'eval' extra (webrtcvad-wheels): "
                               "pip install 'talkinghead[eval]'") from exc
    vad = webrtcvad.Vad(VAD_AGGRESSIVENESS)
    step = int(VAD_FRAME_SECONDS * SAMPLE_RATE)
    pcm = (np.clip(np.asarray(samples, np.float32), -1, 1) * 32767).astype("<i2")
    n_vad = len(pcm) // step
    speech = np.array([vad.is_speech(pcm[i * step:(i + 1) * step].tobytes(), SAMPLE_RATE) for i in range(n_vad)], bool)
    if n_frames is None:
        n_frames = int(np.ceil(len(samples) / SAMPLE_RATE * fps))
    # share of each video frame's time covered by speech frames
    vad_times = (np.arange(n_vad) + 0.5) * VAD_FRAME_SECONDS
    frame_of = np.minimum((vad_times * fps).astype(int), max(n_frames - 1, 0))
    votes = np.bincount(frame_of, weights=speech.astype(float), minlength=n_frames)[:n_frames]
    counts = np.bincount(frame_of, minlength=n_frames)[:n_frames]
    share = np.divide(votes, counts, out=np.zeros(n_frames), where=counts > 0)
    # video frames shorter than a VAD frame may get no vote: take the nearest VAD frame
    empty = counts == 0
    if empty.any() and n_vad:
        nearest = np.minimum(((np.flatnonzero(empty) + 0.5) / fps / VAD_FRAME_SECONDS).astype(int), n_vad - 1)
        share[empty] = speech[nearest]
    return share >= 0.5
