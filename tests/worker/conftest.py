import pytest

from wtest import Proc


@pytest.fixture
def procs():
    """Factory for worker processes; every one still running at teardown is stopped
    (Proc.stop)."""
    started = []

    def start(args, **kwargs):
        p = Proc(args, **kwargs)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()
