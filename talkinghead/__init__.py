"""talkinghead: one portrait + speech -> a lip-synced talking-head video, fast on a CPU.

    import talkinghead
    talkinghead.generate("face.jpg", "speech.wav", "talking.mp4")
"""

from .config import ControlConfig, GenerateConfig, MixConfig, MotionConfig, RenderConfig
from .errors import TalkingHeadError
from .pipeline import Pipeline, generate, load_driving

__version__ = "0.1.0"
__all__ = ["generate", "Pipeline", "load_driving", "GenerateConfig", "MotionConfig", "RenderConfig", "ControlConfig",
           "MixConfig", "TalkingHeadError", "__version__"]
