"""The learned motion model's config and checkpoint file: an .npz of weights with its config as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np

from ...assets import ASSETS_DIR
from ...errors import TalkingHeadError

MODEL_PATH = ASSETS_DIR / "motion_model.npz"  # the offline model (2 s windows)
CAUSAL_MODEL_PATH = ASSETS_DIR / "motion_model_causal.npz"  # the live model (80 ms windows)
FORMAT = 1  # version of the npz layout


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and data layout; stored in every checkpoint so loading needs nothing else."""

    motion_dims: int = 60  # per frame: head 6, gaze 2, expression 52 (representation.MOTION_DIMS)
    audio_dims: int = 8  # per frame: representation.AUDIO_DIMS (prosody) or SPEECH_COMPONENTS (speech)
    audio_features: str = "prosody"  # the audio vector: "prosody" (audio/features.py) or "speech" (Whisper tiny.en
    # states of layer speech_layer on principal axes; representation.py)
    speech_layer: int = 3  # the encoder block a "speech" model reads (the mouth model's)
    rest_dims: int = 52  # the portrait's own blendshape scores
    control_dims: int = 2  # log head amplitude, log head speed (representation.CONTROL_NAMES)
    width: int = 128  # transformer width
    layers: int = 4
    heads: int = 4
    mlp_ratio: int = 4
    window: int = 50  # frames generated per window
    previous: int = 10  # frames of already generated motion the window is conditioned on
    fps: float = 25.0  # the model's frame rate (the source resamples to the video's)
    noise_features: int = 16  # Fourier features of the noise level
    sigma_data: float = 1.0  # EDM's data standard deviation (the data are standardised)
    prediction: str = "edm"  # what the network predicts: "edm" (EDM's F) or "sample" (the clean window, as
    # MDM does for motion)
    conv_kernel: int = 5  # frames of the depthwise temporal convolution after the input embedding (0: none)
    sigma_min: float = 0.002
    sigma_max: float = 20.0
    head_frame: str = "upright"  # the axes of its head angles: "upright" (face.pose.upright_frame, as Motion's)
    # or "canonical" (the canonical face's own, which models trained before 3 Dec 2026 used; converted on output)

    @property
    def tokens(self) -> int:
        """Sequence length the network sees: previous frames then the window."""
        return self.previous + self.window


@dataclass(frozen=True)
class MotionModel:
    """Weights, config and the statistics that standardise the data.

    stats: motion_mean/motion_std (motion_dims,), audio_mean/audio_std (audio_dims,),
    control_median (control_dims,), rest_mean/rest_std (rest_dims,), and for a "speech" model
    speech_mean (width,) and speech_basis (width, audio_dims); info: what it was trained on.
    """

    config: ModelConfig
    weights: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]
    info: dict

    def save(self, path: Path) -> None:
        """Write the npz (weights as `w/NAME` in float16, statistics as `s/NAME`, config and info as JSON)."""
        arrays = {f"w/{k}": v.astype(np.float16) for k, v in self.weights.items()}  # half the file; read as float32
        arrays.update({f"s/{k}": np.asarray(v, np.float32) for k, v in self.stats.items()})
        meta = json.dumps({"format": FORMAT, "config": asdict(self.config), "info": self.info})
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part.npz")
        np.savez_compressed(tmp, meta=np.array(meta), **arrays)
        tmp.replace(path)

    @staticmethod
    def load(path: Path) -> "MotionModel":
        """Read a checkpoint; one clear line if it is missing or not a motion model."""
        path = Path(path)
        if not path.is_file():
            raise TalkingHeadError(f"motion model '{path}' does not exist: train one with `talkinghead train motion` "
                                   "or leave --motion-model empty for the bundled model")
        try:
            with np.load(path) as z:
                meta = json.loads(str(z["meta"]))
                weights = {k[2:]: z[k].astype(np.float32) for k in z.files if k.startswith("w/")}
                stats = {k[2:]: z[k] for k in z.files if k.startswith("s/")}
            known = {f.name for f in fields(ModelConfig)}
            # written before `prediction` existed: EDM's F; before `head_frame`: the canonical face's axes
            stored = {"prediction": "edm", "head_frame": "canonical", **meta["config"]}
            config = ModelConfig(**{k: v for k, v in stored.items() if k in known})
        except Exception:  # not an npz, truncated, or another kind of file: numpy and json raise many kinds
            raise TalkingHeadError(f"'{path}' is not a readable motion model: give an .npz written by "
                                   "`talkinghead train motion`") from None
        if config.audio_features == "speech" and not {"speech_mean", "speech_basis"} <= set(stats):
            raise TalkingHeadError(f"motion model '{path}' reads speech states but has no speech projection: "
                                   "retrain it with `talkinghead train motion`")
        if meta.get("format") != FORMAT:
            raise TalkingHeadError(f"motion model '{path}' has format {meta.get('format')}, this version reads "
                                   f"{FORMAT}: retrain it with `talkinghead train motion`")
        return MotionModel(config, weights, stats, meta.get("info", {}))


@lru_cache(maxsize=4)
def load_cached(path: str) -> MotionModel:
    """A checkpoint loaded once per process (the bundled ones are shared by every pipeline)."""
    return MotionModel.load(Path(path))
