"""Recording what an action shows (codeact_kernel/capture.py), without IPython."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeact_kernel.capture import Capture, Masker, recording
from codeact_kernel.secrets import mask

KEY = "sk-test-HIDDEN-0123456789abcdef"


def test_a_stream_is_one_output_and_joined_once() -> None:
    capture = Capture()
    for piece in ("a", "b", "c"):
        capture.stream("stdout", piece)
    capture.stream("stderr", "oops")
    capture.stream("stdout", "d")
    assert capture.outputs == [
        {"output_type": "stream", "name": "stdout", "text": "abc"},
        {"output_type": "stream", "name": "stderr", "text": "oops"},
        {"output_type": "stream", "name": "stdout", "text": "d"},
    ]
    capture.stream("stdout", "e")
    assert capture.outputs[-1]["text"] == "de", "reading the outputs does not end a stream"


def test_recording_a_stream_costs_linear_time() -> None:
    def seconds(writes: int) -> float:
        capture = Capture()
        started = time.perf_counter()
        for _ in range(writes):
            capture.stream("stdout", "a line of output\n")
        assert len(capture.outputs[0]["text"]) == 17 * writes
        return time.perf_counter() - started

    small = min(seconds(20_000) for _ in range(3))
    # Linear: ten times as long; joining on every write: a hundred times.
    assert seconds(200_000) < 30 * small + 0.5


# Text that can hold the key's pieces but no other key shape.
PIECES = st.lists(st.text(alphabet="sktesHIDN0123 \n", max_size=12), max_size=30)


@given(PIECES, st.integers(0, 30), st.integers(1, len(KEY) - 1))
def test_a_secret_is_masked_however_it_is_split(pieces: list[str], where: int, cut: int) -> None:
    pieces = [*pieces[:where], KEY[:cut], KEY[cut:], *pieces[where:]]
    masker = Masker([KEY])
    shown = "".join(masker.feed(piece) for piece in pieces) + masker.flush()
    assert shown == mask("".join(pieces), known=[KEY])
    assert KEY not in shown


def test_masking_keeps_everything_else() -> None:
    masker = Masker([KEY])
    assert masker.feed("plain text\n") == "plain text\n"
    assert masker.feed("ends in s") == "ends in ", "held: it may start the key"
    assert masker.feed("o it was not\n") == "so it was not\n"
    assert masker.feed("almost sk-test") == "almost "
    assert masker.flush() == "sk-test"
    assert masker.feed(KEY[:-1]) == ""
    assert masker.flush() == "sk-***", "what was held is masked by shape when shown"
    assert Masker([]).feed(KEY) == KEY, "nothing to hide: nothing changes"
    assert Masker(["abc"]).secrets == (), "too short to be a secret"


def test_fd_output_is_recorded_once_and_shown_where_it_went(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with recording([KEY]) as recorder:
        print("from python")
        subprocess.run(["echo", "from a subprocess"], check=True)
        os.write(2, f"key {KEY}\n".encode())
    shown = capfd.readouterr()
    assert shown.out == "from python\nfrom a subprocess\n"
    assert shown.err == "key ***\n"
    text = {o["name"]: o["text"] for o in recorder.capture.outputs}
    assert text == {"stdout": "from python\nfrom a subprocess\n", "stderr": "key ***\n"}


def test_a_stream_kept_past_its_recording_shows_through() -> None:
    stream = io.StringIO()
    saved = sys.stdout
    sys.stdout = stream
    try:
        with recording([KEY], fds=False):
            kept = sys.stdout
        kept.write(f"later {KEY}\n")
    finally:
        sys.stdout = saved
    assert stream.getvalue() == "later ***\n"


def test_no_reader_or_descriptor_is_left_behind() -> None:
    def readers() -> int:
        return sum(t.name == "codeact-fd-capture" for t in threading.enumerate())

    before, descriptors = readers(), len(os.listdir("/dev/fd"))
    for _ in range(20):
        with recording():
            os.write(1, b"")
    deadline = time.monotonic() + 5
    while readers() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert readers() == before
    assert len(os.listdir("/dev/fd")) == descriptors


def test_what_is_written_to_the_replaced_stream_itself_is_masked_and_recorded() -> None:
    """A logging handler made before the action holds the stream, not `sys.stdout`."""
    stream = io.StringIO()
    saved = sys.stdout
    sys.stdout = stream
    try:
        held = sys.stdout
        with recording([KEY], fds=False) as recorder:
            held.write(f"logged {KEY}\n")
            print("printed")
        held.write(f"after {KEY}\n")
    finally:
        sys.stdout = saved
    assert stream.getvalue() == f"logged ***\nprinted\nafter {KEY}\n", "routed only while recording"
    assert recorder.capture.outputs[0]["text"] == "logged ***\nprinted\n"
    assert "write" not in vars(stream), "the stream is as it was"


def test_a_flush_does_not_show_a_held_start_of_the_key() -> None:
    key = "local-server-pass-4242"
    stream = io.StringIO()
    saved = sys.stdout
    sys.stdout = stream
    try:
        with recording([key], fds=False) as recorder:
            for char in key:
                sys.stdout.write(char)
                sys.stdout.flush()
            print(" done")
    finally:
        sys.stdout = saved
    assert stream.getvalue() == "*** done\n"
    assert recorder.capture.outputs[0]["text"] == "*** done\n"
