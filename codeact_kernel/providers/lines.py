"""Incremental line splitting for streamed HTTP bodies (SSE and NDJSON).

Network chunks end anywhere: inside a UTF-8 character, between the CR and LF of a
CRLF, in the middle of a line. `LineDecoder` takes bytes as they arrive and hands
back only complete lines, so the readers above it never see a torn line.
"""

from __future__ import annotations

import codecs
import re

# CR, LF and CRLF all end a line (the SSE spec allows all three). `str.splitlines`
# would also split on U+2028 and friends, which may sit raw inside JSON strings.
_EOL = re.compile(r"\r\n|\r|\n")


class LineDecoder:
    """Feed bytes, get complete lines (without their line ending)."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        # The previous chunk ended in CR: a LF opening the next chunk completes a CRLF.
        self._after_cr = False

    def feed(self, data: bytes) -> list[str]:
        """The lines completed by `data`, in order."""
        return self._split(self._text.decode(data))

    def close(self) -> list[str]:
        """The last line when the body does not end with a line ending."""
        lines = self._split(self._text.decode(b"", final=True))
        if self._buffer:
            lines.append(self._buffer)
            self._buffer = ""
        return lines

    def _split(self, text: str) -> list[str]:
        if self._after_cr and text:
            self._after_cr = False
            if text[0] == "\n":
                text = text[1:]
        buffer = self._buffer + text
        lines: list[str] = []
        start = 0
        for match in _EOL.finditer(buffer):
            lines.append(buffer[start : match.start()])
            start = match.end()
            if match.group() == "\r" and start == len(buffer):
                self._after_cr = True
        self._buffer = buffer[start:]
        return lines
