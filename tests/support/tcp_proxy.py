"""A TCP proxy on 127.0.0.1 for outage drills: put it between a process and its database, `cut()` it
(every open connection is closed and new ones are closed as soon as they arrive, as a dropped database
looks to its clients), then `restore()` it. The database itself, shared with other tests, never stops.

    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = make_url(pg_url).set(host="127.0.0.1", port=proxy.port)
"""

from __future__ import annotations

import socket
import threading
from typing import Self


class TcpProxy:
    def __init__(self, host: str, port: int):
        self.upstream = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._stopped = False
        self.refused = 0  # connections closed on arrival while cut
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _close(sock)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def stop(self) -> None:
        self._stopped = True
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._track(client):
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            if not self._track(server, client):
                continue
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), name="tcp-proxy-pump", daemon=True).start()

    def _track(self, sock: socket.socket, *more: socket.socket) -> bool:
        """Count `sock` among the open connections, unless the proxy is cut: then it is closed (with
        `more`). Checked and counted under one lock, so no connection opened as the cut comes survives it."""
        with self._lock:
            if not self._cut:
                self._open.add(sock)
                return True
            self.refused += 1
        for each in (sock, *more):
            _close(each)
        return False

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
