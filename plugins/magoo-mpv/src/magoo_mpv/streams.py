"""What a player process must be told about a stream before its first byte arrives."""

from __future__ import annotations

from dataclasses import dataclass

from magoo_core.errors import BackendError
from magoo_core.types import AudioChunk, AudioFormat, EncodedAudio

#: codec names a TTS may use → the libavformat demuxer that reads them from a pipe
_DEMUXERS = {"mp3": "mp3", "mpeg": "mp3", "opus": "ogg", "ogg": "ogg", "vorbis": "ogg", "wav": "wav", "flac": "flac", "aac": "aac"}


@dataclass(frozen=True, slots=True)
class StreamKind:
    """The container or PCM layout of one reply's audio; a waiting player is started for one kind.

    :param codec: a key of the demuxer table (``"mp3"``, ``"ogg"``, ``"wav"`` ...) or ``"pcm"``.
    :param sample_rate: Hz, for PCM only (containers carry their own).
    :param channels: for PCM only.
    """

    codec: str
    sample_rate: int | None = None
    channels: int = 1

    @classmethod
    def of(cls, piece: AudioChunk | EncodedAudio) -> StreamKind:
        """The kind of a stream whose first piece is ``piece``.

        :raises BackendError: for a codec no player here can read from a pipe.
        """
        if isinstance(piece, AudioChunk):
            if piece.sample_width != 2:
                raise BackendError(f"the mpv player takes 16-bit PCM, not {8 * piece.sample_width}-bit", retryable=False)
            return cls("pcm", piece.sample_rate, piece.channels)
        if isinstance(piece, EncodedAudio):
            codec = piece.codec.lower()
            if codec not in _DEMUXERS:
                raise BackendError(
                    f"the mpv player cannot stream '{piece.codec}' audio; use mp3, opus, wav or PCM", retryable=False
                )
            return cls(codec)
        raise BackendError(f"the mpv player got {type(piece).__name__}, not AudioChunk or EncodedAudio", retryable=False)

    @classmethod
    def expected(cls, output: AudioFormat | str) -> StreamKind | None:
        """The kind of the streams a TTS announces with its ``output_format``; None when no
        player here reads it (the first reply then says why)."""
        if isinstance(output, AudioFormat):
            return cls("pcm", output.sample_rate, output.channels) if output.sample_width == 2 else None
        codec = str(output).lower()
        return cls(codec) if codec in _DEMUXERS else None

    @property
    def demuxer(self) -> str | None:
        """The libavformat format name to force, or None for raw PCM."""
        return None if self.codec == "pcm" else _DEMUXERS[self.codec]


def payload(piece: AudioChunk | EncodedAudio) -> bytes:
    """The bytes of a piece as they go down the pipe."""
    return piece.pcm if isinstance(piece, AudioChunk) else piece.data
