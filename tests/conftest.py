import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for ymtest

from ymtest import Server  # noqa: E402


@pytest.fixture
def make_server(tmp_path):
    """Factory: make_server(*extra_args) starts a server on a fresh data dir; all are stopped
    at teardown (Server.stop)."""
    servers = []

    def make(*extra_args, data_dir=None, env=None):
        d = data_dir or str(tmp_path / f"data{len(servers)}")
        s = Server(d, list(extra_args), env=env).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def client(server):
    c = server.client()
    yield c
    c.close()
