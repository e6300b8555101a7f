"""The authenticated report channel between the driver and its workers.

The driver listens on a TCP socket (loopback unless told otherwise). Every
connection must prove knowledge of the experiment's random key before a
single pickled message is exchanged: the driver sends a nonce, the peer
answers with ``HMAC(key, "worker" + nonce)`` and its own nonce, and the
driver answers that with ``HMAC(key, "driver" + nonce)``, so each side
knows the other holds the key. The handshake runs in its own thread with a
time limit, so a stranger that connects and stays silent, or sends garbage,
costs one short-lived thread and never blocks the sweep.
"""

from __future__ import annotations

import hmac
import os
import queue
import secrets
import socket
import threading
from multiprocessing.connection import Connection

HANDSHAKE_TIMEOUT_S = 10.0
_NONCE_BYTES = 32
_MAX_HANDSHAKE_MESSAGE = 256
_DIGEST = "sha256"


class AuthenticationFailed(ConnectionError):
    """The peer does not hold the experiment's key."""


def new_key() -> bytes:
    """A fresh random key for one experiment (never written to disk)."""
    return secrets.token_bytes(32)


def _mac(key: bytes, role: bytes, nonce: bytes) -> bytes:
    return hmac.new(key, role + nonce, _DIGEST).digest()


def _recv(conn: Connection, timeout: float) -> bytes:
    if not conn.poll(timeout):
        raise AuthenticationFailed("the peer did not answer the handshake in time")
    return conn.recv_bytes(_MAX_HANDSHAKE_MESSAGE)


def _server_handshake(conn: Connection, key: bytes, timeout: float) -> None:
    nonce = os.urandom(_NONCE_BYTES)
    conn.send_bytes(b"fastasha-1" + nonce)
    answer = _recv(conn, timeout)
    mac, peer_nonce = answer[:-_NONCE_BYTES], answer[-_NONCE_BYTES:]
    if len(answer) != 32 + _NONCE_BYTES or not hmac.compare_digest(mac, _mac(key, b"worker", nonce)):
        raise AuthenticationFailed("the peer's answer does not match the experiment key")
    conn.send_bytes(_mac(key, b"driver", peer_nonce))


def _client_handshake(conn: Connection, key: bytes, timeout: float) -> None:
    hello = _recv(conn, timeout)
    if not hello.startswith(b"fastasha-1") or len(hello) != 10 + _NONCE_BYTES:
        raise AuthenticationFailed("the address does not belong to a fastasha driver")
    nonce = hello[10:]
    mine = os.urandom(_NONCE_BYTES)
    conn.send_bytes(_mac(key, b"worker", nonce) + mine)
    answer = _recv(conn, timeout)
    if not hmac.compare_digest(answer, _mac(key, b"driver", mine)):
        raise AuthenticationFailed("the driver's answer does not match the experiment key")


def _tune_socket(sock: socket.socket) -> None:
    """No Nagle delay for small messages; keepalive so a vanished host is noticed."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):        # Linux: give up on a silent peer after ~1 min
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def connect(address: tuple[str, int], key: bytes, timeout: float = HANDSHAKE_TIMEOUT_S) -> Connection:
    """Open an authenticated connection to the driver at ``address``."""
    sock = socket.create_connection(address, timeout=timeout)
    _tune_socket(sock)
    sock.settimeout(None)
    conn = Connection(sock.detach())
    try:
        _client_handshake(conn, key, timeout)
    except (EOFError, ConnectionResetError) as err:
        conn.close()
        raise AuthenticationFailed(
            f"the driver at {address[0]}:{address[1]} closed the connection during the "
            "handshake: the key does not match this experiment"
        ) from err
    except BaseException:
        conn.close()
        raise
    return conn


def _dismiss(conn: Connection) -> None:
    """Tell a peer the driver is done with it (an orderly end, not a vanished driver)."""
    try:
        conn.send(("exit",))
    except (OSError, ValueError):
        pass
    conn.close()


class Server:
    """The driver's listening side: hands out authenticated connections.

    Parameters
    ----------
    key : bytes
        The experiment key.
    host : str, default="127.0.0.1"
        Interface to listen on; a cluster needs an address its workers reach.
    port : int, default=0
        0 picks a free port.
    """

    def __init__(self, key: bytes, host: str = "127.0.0.1", port: int = 0) -> None:
        self._key = key
        self._sock = socket.create_server((host, port), backlog=128)
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        self.accepted: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self.rejected = 0
        self._closed = False
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._thread = threading.Thread(target=self._accept_loop, name="fastasha-accept",
                                        daemon=True)
        self._thread.start()

    @property
    def wakeup(self) -> socket.socket:
        """A socket that becomes readable when a new connection is ready."""
        return self._wake_r

    def drain_wakeup(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def notify(self) -> None:
        """Make :attr:`wakeup` readable (also used to interrupt the driver's wait)."""
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                raw, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handshake, args=(raw,), name="fastasha-handshake",
                             daemon=True).start()

    def _handshake(self, raw: socket.socket) -> None:
        try:
            _tune_socket(raw)
        except OSError:
            pass
        conn = Connection(raw.detach())
        try:
            _server_handshake(conn, self._key, HANDSHAKE_TIMEOUT_S)
        except (AuthenticationFailed, OSError, EOFError, ValueError):
            self.rejected += 1
            conn.close()
            return
        with self._lock:
            if self._closed:      # too late: nobody will serve it
                _dismiss(conn)
                return
            self.accepted.put(conn)
        self.notify()

    def dismiss_waiting(self) -> int:
        """Tell every authenticated connection nobody took that it is done; how many."""
        n = 0
        while True:
            try:
                conn = self.accepted.get_nowait()
            except queue.Empty:
                return n
            _dismiss(conn)
            n += 1

    def close(self) -> None:
        """Stop listening; close every authenticated connection nobody took."""
        with self._lock:
            self._closed = True
            self.dismiss_waiting()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)   # wakes the blocked accept()
        except OSError:
            pass
        try:
            self._sock.close()
        except OSError:
            pass
        for s in (self._wake_r, self._wake_w):
            try:
                s.close()
            except OSError:
                pass
