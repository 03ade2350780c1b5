"""MLLP (HL7 v2 Minimal Lower Layer Protocol) over TCP: frames in, one ACK out per frame.

A frame is `VT message FS CR` (0x0B … 0x1C 0x0D). Interface engines keep one connection open
and send the next message once the previous one is acknowledged.

Not python-hl7's asyncio `hl7.mllp` (documented as experimental; a frame that follows stray
bytes is dropped whole) nor hl7apy's `MLLPServer` (one message per connection, no size bound):
the framing is three bytes, and what matters here is robustness, so the decoder below is ours
and is tested on its own. Bounds: a maximum frame size, an idle timeout per connection and a
maximum number of connections; a client that disconnects mid-frame costs only its partial frame,
which was never acknowledged.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

START, END = b"\x0b", b"\x1c\x0d"


@dataclass(frozen=True)
class TooLarge:
    """A frame over the size bound was skipped; `head` is its start (to address the ACK)."""

    head: bytes


class FrameDecoder:
    """Splits an MLLP byte stream into frames, whatever the read boundaries.

    Bytes outside a frame (garbage between frames) are dropped and counted. A start byte inside
    an unfinished frame means the sender gave up on that frame and began another: the partial
    one is dropped. A frame over `max_size` is skipped and reported as TooLarge.
    """

    def __init__(self, max_size: int):
        self.max_size = max_size
        self.discarded = 0
        self._buffer = bytearray()
        self._in_frame = False
        self._skipping: bytes | None = None  # head of an oversized frame being skipped

    @property
    def partial(self) -> bool:
        """True while a frame has begun and not ended."""
        return self._in_frame

    def feed(self, data: bytes) -> list[bytes | TooLarge]:
        self._buffer += data
        frames: list[bytes | TooLarge] = []
        while self._next(frames):
            pass
        return frames

    def _next(self, frames: list) -> bool:
        """Consume one step; False when more bytes are needed."""
        if not self._in_frame:
            return self._find_start()
        end = self._buffer.find(END)
        restart = self._buffer.find(START)
        if restart >= 0 and (end < 0 or restart < end):
            del self._buffer[: restart + 1]  # an abandoned frame: start again at the new VT
            self._skipping = None
            return True
        if end < 0:
            self._bound_partial()
            return False
        body, skipped = bytes(self._buffer[:end]), self._skipping
        del self._buffer[: end + len(END)]
        self._in_frame, self._skipping = False, None
        if skipped is not None or len(body) > self.max_size:
            frames.append(TooLarge(skipped if skipped is not None else body[:1024]))
        else:
            frames.append(body)
        return True

    def _find_start(self) -> bool:
        start = self._buffer.find(START)
        garbage = start if start >= 0 else len(self._buffer)
        self.discarded += garbage
        del self._buffer[: garbage + (1 if start >= 0 else 0)]
        self._in_frame = start >= 0
        return self._in_frame

    def _bound_partial(self) -> None:
        """Past the bound, keep only the frame's head and a possible split FS."""
        if len(self._buffer) <= self.max_size:
            return
        if self._skipping is None:
            self._skipping = bytes(self._buffer[:1024])
        keep = 1 if self._buffer.endswith(END[:1]) else 0
        del self._buffer[: len(self._buffer) - keep]


def frame(message: bytes) -> bytes:
    return START + message + END


class MllpServer(socketserver.ThreadingTCPServer):
    """A thread per connection (interface engines hold few, long-lived connections)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        on_message: Callable[[bytes], bytes],
        on_too_large: Callable[[bytes], bytes],
        *,
        max_message: int,
        idle_timeout: float,
        max_clients: int,
    ):
        self.on_message = on_message
        self.on_too_large = on_too_large
        self.max_message = max_message
        self.idle_timeout = idle_timeout
        self.slots = threading.BoundedSemaphore(max_clients)
        super().__init__(address, _Connection)

    @property
    def port(self) -> int:
        return self.server_address[1]


class _Connection(socketserver.BaseRequestHandler):
    server: MllpServer

    def handle(self) -> None:
        if not self.server.slots.acquire(blocking=False):
            log.warning("mllp connection refused", reason="too many connections")
            return
        try:
            self._serve(self.request)
        finally:
            self.server.slots.release()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(self.server.idle_timeout)
        decoder = FrameDecoder(self.server.max_message)
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                log.info("mllp connection closed", reason="idle", partial_frame=decoder.partial)
                return
            except OSError:
                return
            if not data:
                if decoder.partial:  # never acknowledged, so the sender still has it
                    log.info("mllp client left mid-frame")
                return
            if not self._answer_all(sock, decoder.feed(data)):
                return

    def _answer_all(self, sock: socket.socket, items: list[bytes | TooLarge]) -> bool:
        for item in items:
            if isinstance(item, TooLarge):
                answer = self.server.on_too_large(item.head)
            else:
                answer = self.server.on_message(item)
            try:
                sock.sendall(frame(answer))
            except OSError:
                return False
        return True


def start(server: MllpServer) -> threading.Thread:
    """Serve in a background thread (tests, and the CLI's signal-aware main loop)."""
    thread = threading.Thread(target=server.serve_forever, name="mllp", daemon=True)
    thread.start()
    return thread
