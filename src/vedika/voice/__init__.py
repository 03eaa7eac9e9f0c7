"""Voice: speech to text (`POST /ai/transcribe`) and text to speech (`POST /ai/speech`)
through OpenAI-compatible audio endpoints (a local Whisper server, OpenAI, ...)."""
