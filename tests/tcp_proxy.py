"""A TCP proxy on loopback that a test can cut: a network partition between a node
and its database, made of real sockets (no mocks, nothing sent beyond 127.0.0.1)."""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target_port``; ``cut()`` drops every open
    connection and refuses new ones until ``restore()``.

    With ``fallback_ports`` it is a load balancer's failover: a new connection goes to
    the first target that accepts it, so once a target dies its clients, reconnecting,
    reach the next one."""

    def __init__(self, target_port: int, *fallback_ports: int) -> None:
        self.target_ports = (target_port, *fallback_ports)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            doomed, self._open = self._open, set()
        for sock in doomed:
            _close(sock)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refused = self._cut
            if refused:
                _close(client)
                continue
            upstream = _connect_first(self.target_ports)
            if upstream is None:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _connect_first(ports: tuple[int, ...]) -> socket.socket | None:
    for port in ports:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            continue
    return None


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
