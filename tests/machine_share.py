"""How the suite shares this machine when pytest-xdist runs it in several workers.

- Tests that share a module's fixtures (a kernel, a JupyterLab) run in one worker, so
  each module starts its kernels once; the browser tests are one group with one
  JupyterLab, whatever module they are in.
- A test marked `timing` (it asserts a latency, such as "the interrupt is answered
  within 1 s") runs while no other worker runs a test: it measures the code, not the
  neighbour's kernel start. Other tests share the machine as they please.

Without xdist (`-p no:xdist`, `-n 0`) nothing here changes how a test runs.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

import pytest

BROWSER = Path(__file__).parent / "browser"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "timing: asserts a latency; runs while no other xdist worker runs a test"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = "browser" if BROWSER in item.path.parents else item.path.stem
        item.add_marker(pytest.mark.xdist_group(group))


@contextlib.contextmanager
def _machine(directory: Path, *, alone: bool) -> Iterator[None]:
    """A readers-writer lock across worker processes: shared, or `alone`.

    A turnstile keeps a waiting `alone` test from starving: while it waits, no other
    test starts, and the ones running finish.
    """
    with (
        open(directory / "turnstile", "a") as turnstile,
        open(directory / "machine", "a") as machine,
    ):
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(machine, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        finally:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(machine, fcntl.LOCK_UN)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[object]:
    # Around set-up, call and teardown: a module's kernel starting in one worker is load
    # for a timing test in the other.
    cache = getattr(item.config, "cache", None)  # None with -p no:cacheprovider
    if not hasattr(item.config, "workerinput") or cache is None:
        return (yield)
    # One lock for every run from this checkout: two runs at once share the machine too.
    directory = cache.mkdir("machine-share")
    with _machine(directory, alone=item.get_closest_marker("timing") is not None):
        return (yield)
