"""Response heads read within bounds: at most RESPONSE_HEADERS_LIMIT bytes and MAX_RESPONSE_HEADERS
lines of header per attempt.

http.client reads a response's head whole before anything sees it, up to 100 lines of 64 KiB each:
6.5 MB that one receiver could make a worker read, hold and store for every attempt. Past the bounds
the head is not read further and the body not at all (the connection is closed, never reused); the
response keeps its status and the headers read so far, and `headers_cut` says so. It is not an error:
the receiver has answered, and its status decides the attempt.
"""

import http.client

from callbacks import conf
from callbacks.domain.bounds import MAX_RESPONSE_HEADERS

_END_OF_HEAD = (b"\r\n", b"\n", b"")
# The socket reader's buffer. http.client's default (8 KiB) is allocated for every response and
# held while the receiver thinks: 8 MB at 1,000 callbacks in flight. A usual head and short
# answer fit in this; a longer one takes a few more reads, and reads of the body larger than the
# buffer go straight into the caller's (iter_content asks for 64 KiB).
READ_BUFFER_BYTES = 2048


class _BoundedHead:
    """The socket's reader while the head is read: passes whole lines through until the budget is
    spent, then ends the head (an empty line) in place of the line that did not fit."""

    def __init__(self, reader, *, limit: int, max_lines: int):
        self.reader = reader
        self.room = limit
        self.lines_left = max_lines + 1  # and the status line
        self.cut = False

    def readline(self, size: int = -1) -> bytes:
        if self.cut:
            return b"\r\n"
        line = self.reader.readline(size)
        if line in _END_OF_HEAD:
            return line
        self.lines_left -= 1
        if len(line) > self.room or self.lines_left < 0:
            self.cut = True
            return b"\r\n"
        self.room -= len(line)
        return line

    def close(self) -> None:
        self.reader.close()


class _SmallBufferedSocket:
    """What http.client's response is made with: the socket, read through a small buffer (it only
    calls makefile)."""

    def __init__(self, sock):
        self.sock = sock

    def makefile(self, mode: str):
        return self.sock.makefile(mode, buffering=READ_BUFFER_BYTES)


class BoundedHeadResponse(http.client.HTTPResponse):
    """http.client's response with the head read within bounds (the connections' response_class)."""

    headers_cut = False

    def __init__(self, sock, *args, **kwargs):
        super().__init__(_SmallBufferedSocket(sock), *args, **kwargs)

    def begin(self) -> None:
        if self.headers is not None:
            return
        whole = self.fp
        head = _BoundedHead(whole, limit=conf.get("RESPONSE_HEADERS_LIMIT"), max_lines=MAX_RESPONSE_HEADERS)
        self.fp = head
        try:
            super().begin()
        finally:
            if self.fp is head:  # begin closes the reader itself when the response has no body
                self.fp = whole
        if head.cut:
            # The rest of the head, and the body after it, are left unread: the connection cannot be
            # reused, and the response ends here. A length or chunked coding read before the cut
            # would have urllib3 wait for that body, or read the rest of the head as chunks.
            self.headers_cut = True
            self.length, self.chunked, self.will_close = 0, False, True
            del self.msg["content-length"], self.msg["transfer-encoding"]


def headers_cut(response) -> bool:
    """Whether the head of this requests response was cut at the bounds."""
    original = getattr(response.raw, "_original_response", None)
    return bool(getattr(original, "headers_cut", False))
