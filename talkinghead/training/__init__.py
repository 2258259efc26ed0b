"""Training of the learned parts (needs the `train` extra: torch, CPU build). Never imported at inference."""
