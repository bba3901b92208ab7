"""Recordings of a real Gateway: record through the proxy, replay through
the mock, diff two of them (FORMAT.md describes the file)."""

from __future__ import annotations

from .format import FORMAT_NAME, FORMAT_VERSION, Recording, RecordingError, load

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "Recording", "RecordingError", "load"]
