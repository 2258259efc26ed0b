"""talkinghead: one portrait + speech -> a lip-synced talking-head video, fast on a CPU.

    import talkinghead
    talkinghead.generate("face.jpg", "speech.wav", "talking.mp4")
"""

from .config import PRESETS, ControlConfig, GenerateConfig, MixConfig, MotionConfig, RenderConfig
from .errors import TalkingHeadError
from .io import load_audio, load_image
from .pipeline import Pipeline, generate, load_driving

__version__ = "0.1.0"
__all__ = ["generate", "Pipeline", "load_audio", "load_image", "load_driving", "GenerateConfig", "MotionConfig",
           "RenderConfig", "ControlConfig", "MixConfig", "PRESETS", "TalkingHeadError", "__version__"]
