"""magoo-openai: a responder, speech-to-text and text-to-speech for OpenAI and every
OpenAI-compatible server, through the official ``openai`` SDK with ``base_url``."""

from __future__ import annotations
