"""The report channel: only holders of the experiment key get through."""

from __future__ import annotations

import socket
import time

import pytest

from fastasha._execution.channel import AuthenticationFailed, Server, connect, new_key


@pytest.fixture
def server():
    srv = Server(new_key())
    try:
        yield srv
    finally:
        srv.close()


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_the_right_key_gets_a_working_connection(server):
    client = connect(server.address, server._key)
    peer = server.accepted.get(timeout=5)
    client.send(("hello", 1))
    assert peer.recv() == ("hello", 1)
    peer.send("back")
    assert client.recv() == "back"
    client.close()
    peer.close()


def test_a_wrong_key_is_refused_with_a_clear_error(server):
    with pytest.raises(AuthenticationFailed, match="key does not match"):
        connect(server.address, new_key())
    assert _wait_for(lambda: server.rejected == 1)
    assert server.accepted.empty()


def test_garbage_is_dropped_and_the_server_keeps_serving(server):
    raw = socket.create_connection(server.address)
    raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 10)
    assert _wait_for(lambda: server.rejected == 1)
    raw.close()
    client = connect(server.address, server._key)   # still serving
    assert server.accepted.get(timeout=5) is not None
    client.close()


def test_keys_are_random_and_long():
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100 and all(len(k) == 32 for k in keys)
