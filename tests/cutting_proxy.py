"""A TCP relay in front of a gRPC server that can break the client's path at a chosen moment: when armed, the
next call a client starts on an open connection (its HTTP/2 HEADERS frame) is never delivered — the connection
is reset and the relay stops listening, as when a network path, a load balancer or a NAT drops a connection
that the client still holds as ready. The server never sees that call."""

from __future__ import annotations

import socket
import struct
import threading

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADERS = 0x1


class CuttingProxy:
    def __init__(self, target: str):
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self._listener.getsockname()[1]
        self.calls = 0  # calls relayed to the server
        self._armed = threading.Event()
        self.cut = threading.Event()  # a call was cut: the relay listens no more
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self) -> None:
        """Cut at the next call a client starts."""
        self._armed.set()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self._target)
            threading.Thread(target=self._requests, args=(client, server), daemon=True).start()
            threading.Thread(target=_copy, args=(server, client), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket) -> None:
        """Client to server, frame by frame, so that a call can be stopped before any of it is sent."""
        pending = _exactly(client, len(PREFACE))
        while pending is not None:
            header = _exactly(client, 9)
            if header is None:
                break
            length, kind = struct.unpack(">I", b"\0" + header[:3])[0], header[3]
            if kind == HEADERS and self._armed.is_set():
                self.cut.set()
                self._listener.close()  # new connections are refused: the path is gone
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
                break
            if kind == HEADERS:
                self.calls += 1
            body = _exactly(client, length)
            if body is None:
                break
            pending += header + body
            try:
                server.sendall(pending)
            except OSError:
                break
            pending = b""
        client.close()
        server.close()


def _exactly(connection: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        try:
            chunk = connection.recv(size - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def _copy(source: socket.socket, destination: socket.socket) -> None:
    while True:
        try:
            chunk = source.recv(65536)
            if not chunk:
                break
            destination.sendall(chunk)
        except OSError:
            break
    source.close()
    destination.close()
