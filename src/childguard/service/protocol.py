# Owns the HTTP protocol the service's workers speak: uvicorn's h11, with TCP_NODELAY on.
"""`NoDelayH11Protocol`: uvicorn's h11 protocol that turns Nagle's algorithm off on every
connection it accepts.

asyncio sets TCP_NODELAY only on sockets whose protocol number is TCP; the listening socket
uvicorn binds itself for several workers carries none, so without this every answer written
in two parts (head, then body) to a kept-alive client waited for the client's delayed ACK,
about 40 ms. With one worker uvicorn lets asyncio bind, and the option was already on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Turn Nagle's algorithm off on a TCP transport's socket (nothing for other sockets)."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):  # the connection may be gone already
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, on a socket with TCP_NODELAY."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)
