"""Invalidations between the workers of one ``serve``, without Redis.

``prompt-middleware serve --workers N`` creates a private temporary directory and names it
in ``PROMPT_MIDDLEWARE_WORKER_DIR``. Each worker binds a Unix datagram socket there
(``<pid>.sock``) and sends each invalidation to every other socket in the directory: one
``sendto`` per sibling, no connection, no broker, nothing to reconnect. A datagram is
delivered whole or not at all; a socket whose worker has died refuses it and is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from typing import Final

import structlog

__all__ = ["WORKER_DIR_VARIABLE", "WorkerLink"]

logger = structlog.get_logger(__name__)

WORKER_DIR_VARIABLE: Final = "PROMPT_MIDDLEWARE_WORKER_DIR"
_SUFFIX: Final = ".sock"
_MAX_DATAGRAM: Final = 65536


class WorkerLink:
    """This worker's socket in the shared directory, and the way to its siblings'."""

    def __init__(
        self, directory: str, *, on_message: Callable[[bytes], None], name: str | None = None
    ) -> None:
        """``name`` (the process id by default) names this worker's socket."""
        self._directory = directory
        self._on_message = on_message
        self.path = os.path.join(directory, f"{name or os.getpid()}{_SUFFIX}")
        self._socket: socket.socket | None = None

    def start(self) -> None:
        """Bind this worker's socket and read it on the running event loop."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # left by an earlier process with this pid
        sock.bind(self.path)
        sock.setblocking(False)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        self._socket = sock

    def send(self, payload: bytes) -> None:
        """Send ``payload`` to every sibling now; never waits (a full socket drops it)."""
        sock = self._socket
        if sock is None:
            return
        for path in self._siblings():
            try:
                sock.sendto(payload, path)
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    os.unlink(path)  # its worker is gone
            except OSError as exc:  # a full buffer, a message too long
                logger.warning("worker_send_failed", error=type(exc).__name__)

    def close(self) -> None:
        """Stop reading and remove this worker's socket."""
        sock, self._socket = self._socket, None
        if sock is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            asyncio.get_running_loop().remove_reader(sock.fileno())
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def _siblings(self) -> list[str]:
        try:
            names = os.listdir(self._directory)
        except OSError:
            return []
        own = os.path.basename(self.path)
        return [
            os.path.join(self._directory, name)
            for name in names
            if name.endswith(_SUFFIX) and name != own
        ]

    def _readable(self) -> None:
        sock = self._socket
        while sock is not None:
            try:
                payload = sock.recv(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._on_message(payload)
