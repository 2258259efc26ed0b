"""Learned motion: a small diffusion transformer over head, expression and gaze (VASA-1 style).

Laid out as k-diffusion is: `network.py` knows nothing of noise (NumPy forward of the transformer),
`denoiser.py` applies the EDM preconditioning and classifier-free guidance, `samplers.py` holds pure
sampling functions, `checkpoint.py` the config the checkpoint carries, `representation.py` the
motion and audio vectors the network reads and writes, and `source.py` the MotionSource that
generates window after window. Training (torch) lives in `talkinghead/training/`.
"""
