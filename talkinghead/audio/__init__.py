"""Audio analysis: per-frame features (features) and Whisper tiny.en's encoder (speech_encoder), both
streamed chunking-independently from 16 kHz PCM."""
