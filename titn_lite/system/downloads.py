"""Downloads that give up quickly and say what to do, instead of hanging offline."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

NETWORK_TIMEOUT_S = 10


@contextmanager
def network_timeout(seconds: float = NETWORK_TIMEOUT_S) -> Iterator[None]:
    """Give every socket opened inside the block a timeout.

    torchvision's and torch.hub's downloads call ``urlopen`` without one, so a network
    that drops packets (rather than refusing) would otherwise hang them.
    """
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
