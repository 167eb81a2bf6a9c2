"""Actions and outputs that try to wreck the session, driven as a user drives them.

Through both hosts (kernel_harness.Host: the `codeact` kernel and `%%codeact` in the
stock `python3` kernel) with jupyter_client, through papermill and nbclient, through
a JupyterLab client's comm, and through terminal IPython at a pseudo-terminal. The
model is the scripted loopback server. Whatever an action does, the kernel lives, the
user sees what IPython would show (less the kernel's own key), and the model sees
what the user sees.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from kernel_harness import (
    HOSTS,
    TEST_KEY,
    Execution,
    Host,
    HostName,
    Messages,
    all_text,
    execute,
    host_notebook,
    interrupt_when,
    kernel_env,
    running_kernel,
    user_messages,
)
from model_server import ScriptedModelServer, text
from nbclient import NotebookClient

from codeact_kernel.labcomm import PROTOCOL, TARGET

pytest_plugins = ("kernel_harness",)

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def action(code: str) -> str:
    return f"```python\n{code}\n```"


def observation(server: ScriptedModelServer, request: int = 1) -> str:
    """What the model was told after the action of its `request - 1`th answer."""
    return user_messages(server.requests[request])[-1]


def streams(result: Execution, name: str | None = None) -> str:
    return "".join(
        m["content"]["text"]
        for m in result.of_type("stream")
        if name is None or m["content"]["name"] == name
    )


def shown_text(result: Execution) -> str:
    """Every stream and traceback the user saw, without colors."""
    tracebacks = ["\n".join(m["content"]["traceback"]) for m in result.of_type("error")]
    return ANSI.sub("", streams(result) + "\n".join(tracebacks))


def shows(messages: Messages, needle: str) -> bool:
    for message in messages:
        content = message["content"]
        if needle in content.get("text", "") or needle in str(content.get("data", "")):
            return True
    return False


def interrupt_a_code_cell(host: Host) -> None:
    """A plain code cell is interrupted as in IPython, within a second."""
    during, fired = interrupt_when(host.manager, lambda ms: shows(ms, "napping"))
    cell = host.execute("import time\nprint('napping', flush=True)\ntime.sleep(30)", during=during)
    assert fired, "the cell started"
    assert cell.content["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - fired[0] < 1.0


# --- exit() -------------------------------------------------------------------------

AFTER = "print('after exit')"
EXITS = {
    "exit()": f"exit()\n{AFTER}",
    "quit()": f"quit()\n{AFTER}",
    "exit(0)": f"exit(0)\n{AFTER}",
    "ask_exit": f"get_ipython().ask_exit()\n{AFTER}",
    "keep_kernel": f"quit(keep_kernel=True)\n{AFTER}",
    "exiter": f"get_ipython().exiter()\n{AFTER}",
    # IPython calls it when it is the whole cell.
    "bare exit": "exit",
    "from a thread": (
        f"import threading\nquitter = threading.Thread(target=quit)\nquitter.start()\n"
        f"quitter.join()\n{AFTER}"
    ),
}


@pytest.mark.parametrize("code", EXITS.values(), ids=list(EXITS))
def test_exit_in_an_action_leaves_the_kernel_running(
    host: Host, model_server: ScriptedModelServer, code: str
) -> None:
    host.execute("survivor = 'still here'")
    model_server.script(text(action(code)), text("Done."))
    result = host.request("finish up and exit")
    assert result.status == "ok", result.content
    assert result.content["payload"] == []
    # ipykernel stops its event loop 0.1 s after an exit; give it the chance.
    time.sleep(0.5)
    assert host.manager.is_alive()
    assert host.execute("print(survivor)").stdout == "still here\n"
    told = observation(model_server)
    assert "may not end the user's kernel" in told
    if AFTER in code:
        assert "after exit" in told, "the rest of the action ran, as in IPython"
    assert "may not end the user's kernel" in streams(result, "stderr"), "the user sees it too"


STREAM_WRECKS = {
    "sys.stdout.close()": "import sys\nsys.stdout.close()",
    "sys.stderr.close()": "import sys\nsys.stderr.close()\n1 / 0",
    "os.close(1)": "import os\nos.close(1)\nos.close(2)",
    "sys.stdout replaced": "import os, sys\nsys.stdout = open(os.devnull, 'w')",
}


@pytest.mark.parametrize("code", STREAM_WRECKS.values(), ids=list(STREAM_WRECKS))
def test_an_action_cannot_take_the_output_away(
    host: Host, model_server: ScriptedModelServer, code: str
) -> None:
    model_server.script(text(action(code)), text(action("print('still printing')")), text("Done."))
    result = host.request("close the output streams")
    assert result.status == "ok", result.content
    assert result.stdout == "still printing\n"
    assert observation(model_server, 2) == "Observation:\nstill printing"
    assert host.execute("print('the user too')").stdout == "the user too\n"


def test_an_exception_that_cannot_be_printed_is_an_ordinary_failure(
    host: Host, model_server: ScriptedModelServer
) -> None:
    code = (
        "class Unprintable(Exception):\n    def __str__(self):\n        raise RuntimeError\n"
        "raise Unprintable()"
    )
    model_server.script(text(action(code)), text(action("print('carried on')")), text("Done."))
    result = host.request("raise something odd")
    assert result.status == "ok", result.content
    assert "raise Unprintable()" in observation(model_server)
    assert result.stdout == "carried on\n"


SYSTEM_EXITS = {
    "import sys\nsys.exit(3)": "SystemExit: 3",
    "import sys\nsys.exit()": "SystemExit",
    "raise SystemExit('bye')": "SystemExit: bye",
}


@pytest.mark.parametrize(("code", "told"), SYSTEM_EXITS.items(), ids=list(SYSTEM_EXITS.values()))
def test_sys_exit_in_an_action_is_an_ordinary_exception(
    host: Host, model_server: ScriptedModelServer, code: str, told: str
) -> None:
    model_server.script(
        text(action(code)),
        text(action("print('carried on')")),
        text("Done."),
    )
    result = host.request("exit with a status")
    assert result.status == "ok", result.content
    assert told in observation(model_server)
    assert "carried on" in result.stdout
    time.sleep(0.5)
    assert host.manager.is_alive()


# --- SIGINT -------------------------------------------------------------------------

SIGINT_CHANGES = {
    "ignored": "signal.signal(signal.SIGINT, signal.SIG_IGN)",
    "own handler": "signal.signal(signal.SIGINT, lambda *_: print('mine'))",
    "swallowed": "signal.signal(signal.SIGINT, lambda *_: None)",
    "python default": "signal.signal(signal.SIGINT, signal.default_int_handler)",
    "blocked": "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})",
}


@pytest.mark.timing
@pytest.mark.parametrize("change", SIGINT_CHANGES.values(), ids=list(SIGINT_CHANGES))
def test_an_action_that_changes_sigint_cannot_stop_interrupts(
    host: Host, model_server: ScriptedModelServer, change: str
) -> None:
    model_server.script(
        text(action(f"import signal\n{change};")),
        text("Thinking " * 300, chunk_size=4, delay=0.05),
    )
    during, fired = interrupt_when(host.manager, lambda ms: shows(ms, "Thinking Thinking"))
    result = host.request("change SIGINT, then think out loud", during=during)
    assert fired, "the second answer streamed"
    assert result.content["ename"] == "KeyboardInterrupt", result.content
    assert time.monotonic() - fired[0] < 1.0
    assert host.manager.is_alive()
    # The action's SIGINT setting ended with it: the user's cells interrupt as usual,
    # and so does the model's stream in a later request.
    interrupt_a_code_cell(host)
    interrupt_a_later_stream(host, model_server)


def interrupt_a_later_stream(host: Host, model_server: ScriptedModelServer) -> None:
    model_server.reset()
    model_server.script(text("Pondering " * 300, chunk_size=4, delay=0.05))
    during, fired = interrupt_when(host.manager, lambda ms: shows(ms, "Pondering Pondering"))
    later = host.request("ponder it again", during=during)
    assert fired, "the later answer streamed"
    assert later.content["ename"] == "KeyboardInterrupt", later.content
    assert time.monotonic() - fired[0] < 1.0


@pytest.mark.timing
def test_an_interrupted_actions_traceback_ends_in_the_users_code(
    host: Host, model_server: ScriptedModelServer
) -> None:
    host.execute("%codeact reset")
    code = "import time\nprint('sleeping', flush=True)\ntime.sleep(30)"
    model_server.script(text(action(code)))
    result, after = host.request_interrupted("sleep for a while", once_shown="sleeping")
    assert after is not None and after < 1.0
    shown = shown_text(result)
    assert "KeyboardInterrupt" in shown
    # As IPython shows it: the last frame is the user's line, then the exception.
    assert re.search(r"----> 3 time\.sleep\(30\)\n+KeyboardInterrupt", shown), shown
    assert "interrupts.py" not in result.everything()
    assert "_on_sigint" not in result.everything()
    model_server.reset()
    model_server.script(text("It was interrupted while sleeping."))
    assert host.request("what happened just now?").status == "ok"
    told = all_text(model_server.requests[0])
    assert "time.sleep(30)" in told and "KeyboardInterrupt" in told
    assert "interrupts.py" not in told and "_on_sigint" not in told


@pytest.mark.timing
def test_an_interrupted_async_actions_traceback_has_none_of_our_frames(
    kernel_host: Host, model_server: ScriptedModelServer
) -> None:
    code = "import asyncio\nprint('awaiting', flush=True)\nawait asyncio.sleep(30)"
    model_server.script(text(action(code)))
    result, after = kernel_host.request_interrupted("await for a while", once_shown="awaiting")
    assert after is not None and after < 1.0
    assert result.content["ename"] == "KeyboardInterrupt"
    assert "await asyncio.sleep(30)" in shown_text(result)
    assert "interrupts.py" not in result.everything()
    assert "_on_sigint" not in result.everything()
    assert kernel_host.execute("print('alive')").stdout == "alive\n"


# --- the agent's own controls ---------------------------------------------------------

COMMANDS = {
    "reset": "%codeact reset",
    "a setting": "%codeact model openai:elsewhere",
    "through the shell": "get_ipython().run_line_magic('codeact', 'approval auto')",
    "a request": "%%codeact\nanswer this one for me",
    # Unloading the extension would close the session that runs this very request.
    "unload": "%unload_ext codeact_kernel",
    "reload": "%reload_ext codeact_kernel",
    "reload through IPython": "get_ipython().extension_manager.reload_extension('codeact_kernel')",
    "unload by hand": (
        "import codeact_kernel\ncodeact_kernel.unload_ipython_extension(get_ipython())"
    ),
}


@pytest.mark.parametrize("code", COMMANDS.values(), ids=list(COMMANDS))
def test_an_action_cannot_drive_codeact_itself(
    host: Host, model_server: ScriptedModelServer, code: str
) -> None:
    host.execute("%codeact reset")
    model_server.reset()
    model_server.script(text("Noted."), text(action(code)), text("Done."))
    assert host.request("remember the number seven").status == "ok"
    result = host.request("change your own settings")
    assert result.status == "ok", result.content
    assert len(model_server.requests) == 3, "no nested request"
    told = observation(model_server, 2)
    refused = r"UsageError: (%%?codeact cannot run|codeact_kernel cannot be unloaded or reloaded)"
    assert re.search(refused + r" inside a(n| code) action", told), told
    assert "remember the number seven" in all_text(model_server.requests[2]), "nothing forgotten"
    assert model_server.requests[2]["body"]["model"] == "test-model"
    assert model_server.requests[2]["body"]["model"] == model_server.requests[1]["body"]["model"]


def test_after_a_refused_unload_codeact_still_works(
    host: Host, model_server: ScriptedModelServer
) -> None:
    model_server.script(text(action("%unload_ext codeact_kernel")), text("Done."))
    assert host.request("unload yourself").status == "ok"
    assert "=== Request" in host.execute("%codeact history").stdout
    model_server.reset()
    model_server.script(text("Still here."))
    assert host.request("are you still there?").status == "ok"


# --- actions Python cannot compile, streams taken away ------------------------------

TOO_DEEP = {
    "a sum of 5,000 terms": "deep_total = 1" + "+1" * 5000,
    "a sum of 200,000 terms": "deep_total = 1" + "+1" * 200_000,
    "100,000 attributes": "deep_total = a" + ".b" * 100_000,
}


@pytest.mark.parametrize("code", TOO_DEEP.values(), ids=list(TOO_DEEP))
def test_an_action_too_deep_for_the_compiler_is_an_ordinary_failure(
    host: Host, model_server: ScriptedModelServer, code: str
) -> None:
    model_server.script(text(action(code), chunk_size=65536), text("It failed."))
    result = host.request("add a great many ones")
    assert result.status == "ok", result.content
    assert "RecursionError: maximum recursion depth exceeded" in shown_text(result)
    told = observation(model_server)
    assert told.startswith("Observation:\nRecursionError: maximum recursion depth exceeded")
    assert "codeact_kernel/" not in result.everything() + told
    assert "failed: RecursionError" in host.execute("%codeact history").stdout
    assert host.execute("deep_total").content["ename"] == "NameError"


STREAMS_TAKEN = {
    "stderr None": "sys.stderr = None",
    "stdout None": "sys.stdout = None",
    "stderr deleted": "del sys.stderr",
    "stderr a StringIO": "sys.stderr = io.StringIO()",
}


@pytest.mark.parametrize("change", STREAMS_TAKEN.values(), ids=list(STREAMS_TAKEN))
def test_whatever_an_action_does_to_the_streams_its_traceback_is_shown(
    host: Host, model_server: ScriptedModelServer, change: str
) -> None:
    model_server.script(text(action(f"import io, sys\n{change}\n1 / 0")), text("It failed."))
    result = host.request("divide one by zero")
    assert result.status == "ok", result.content
    assert re.search(r"----> 3 1 / 0\n+ZeroDivisionError: division by zero", shown_text(result))
    told = observation(model_server)
    assert told.endswith("----> 3 1 / 0\n\nZeroDivisionError: division by zero"), told
    assert "codeact_kernel/" not in result.everything() + told
    assert host.execute("print('the user too')").stdout == "the user too\n"


TEE_PATHS = {
    "buffer": ("sys.stdout.buffer.write(b'hi')", "'OutStream' object has no attribute 'buffer'"),
    "stderr buffer": ("sys.stderr.buffer", "'OutStream' object has no attribute 'buffer'"),
    "bytes written": ("sys.stdout.write(b'hi')", "TypeError: write() argument must be str"),
}


@pytest.mark.parametrize(("code", "error"), TEE_PATHS.values(), ids=list(TEE_PATHS))
def test_tracebacks_through_the_streams_are_the_ones_ipython_shows(
    host: Host, model_server: ScriptedModelServer, code: str, error: str
) -> None:
    model_server.script(text(action(f"import sys\n{code}")), text("It failed."))
    result = host.request("use the streams oddly")
    assert error in shown_text(result)
    told = observation(model_server)
    assert error in told
    assert "codeact_kernel/" not in result.everything() + told
    assert re.search(r"----> 2 sys\.std.*\n+\w+Error", told), told


# --- output that is not valid UTF-8 ---------------------------------------------------

NOT_UTF8 = {
    "latin-1 file name": (
        "import os, shutil, tempfile\nfolder = tempfile.mkdtemp()\n"
        "open(os.path.join(folder.encode(), b'caf\\xe9.txt'), 'wb').close()\n"
        "for name in os.listdir(folder):\n    print(name)\nshutil.rmtree(folder)",
        "caf\ufffd.txt",
    ),
    "surrogate escape": ("print('bad \\udcff byte')", "bad \ufffd byte"),
    "lone surrogate": ("print('lone \\ud800 high')", "lone \ufffd high"),
    "raw bytes on fd 1": ("import os\nos.write(1, b'raw \\xff bytes\\n')", "raw \ufffd bytes"),
    "in an exception": ("raise ValueError('caf\\udce9')", "ValueError: caf\ufffd"),
    "latin-1 from a subprocess": (
        "import subprocess\nsubprocess.run(['printf', 'caf\\\\351\\\\n'])",
        "caf\ufffd",
    ),
    "raw bytes on fd 2": ("import os\nos.write(2, b'\\xff\\xfe err\\n')", "\ufffd\ufffd err"),
    "in display data": (
        "from IPython.display import display\ndisplay({'text/plain': 'x\\udce9y'}, raw=True)",
        "x\ufffdy",
    ),
    "in a repr": (
        "class Odd:\n    def __repr__(self):\n        return 'r\\udce9r'\nOdd()",
        "r\ufffdr",
    ),
}


@pytest.mark.parametrize(("code", "seen"), NOT_UTF8.values(), ids=list(NOT_UTF8))
def test_output_that_is_not_utf8_never_poisons_a_request(
    host: Host, model_server: ScriptedModelServer, code: str, seen: str
) -> None:
    model_server.script(text(action(code)), text("Seen."))
    result = host.request("print some odd bytes")
    assert result.status == "ok", result.content
    assert seen in observation(model_server)
    model_server.reset()
    model_server.script(text("Still fine."))
    later = host.request("and now something else")
    assert later.status == "ok", later.content


def test_a_cell_and_a_request_that_are_not_utf8_never_poison_a_request(
    host: Host, model_server: ScriptedModelServer
) -> None:
    """A client can send lone surrogates (JSON escapes them); the model gets U+FFFD."""
    host.execute("%codeact reset")
    assert host.execute("odd = 'a\udce9b'  # caf\udce9").status == "ok"
    model_server.reset()
    model_server.script(text("Seen."), text("Still fine."))
    assert host.request("what is odd, caf\udce9?").status == "ok"
    assert host.request("and now something else").status == "ok"
    sent = user_messages(model_server.requests[1])
    assert "odd = 'a\ufffdb'  # caf\ufffd" in sent[0]
    assert "what is odd, caf\ufffd?" in sent[0]


# --- output: live, complete, once -----------------------------------------------------


def test_a_long_actions_output_is_live(host: Host, model_server: ScriptedModelServer) -> None:
    code = "import time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second')"
    model_server.script(text(action(code)), text("Done."))
    arrived: dict[str, float] = {}

    def during(messages: Messages) -> None:
        if "first" not in arrived and shows(messages[-1:], "first\n"):
            arrived["first"] = time.monotonic()

    result = host.request("print something, wait a bit, then print again", during=during)
    assert result.status == "ok", result.content
    assert time.monotonic() - arrived["first"] > 1.0, "shown while the action still ran"
    assert result.stdout == "first\nsecond\n"


FD_WRITES = {
    "os.system": ("import os\nos.system('echo fd-out-1')", "fd-out-1", "stdout"),
    "subprocess.run": (
        "import subprocess\nsubprocess.run(['echo', 'fd-out-2'])",
        "fd-out-2",
        "stdout",
    ),
    "stderr": (
        "import subprocess\nsubprocess.run('echo fd-err-3 >&2', shell=True)",
        "fd-err-3",
        "stderr",
    ),
    "os.write": ("import os\nos.write(1, b'fd-out-4\\n')", "fd-out-4", "stdout"),
    "os.write 2": ("import os\nos.write(2, b'fd-err-5\\n')", "fd-err-5", "stderr"),
    "C printf": (
        "import ctypes\nlibc = ctypes.CDLL(None)\nlibc.printf(b'fd-out-%d\\n', 6)",
        "fd-out-6",
        "stdout",
    ),
    "!cmd": ("!echo fd-out-7", "fd-out-7", "stdout"),
}


@pytest.mark.parametrize(("code", "written", "name"), FD_WRITES.values(), ids=list(FD_WRITES))
def test_what_subprocesses_write_reaches_the_model_and_the_user_once(
    host: Host, model_server: ScriptedModelServer, code: str, written: str, name: str
) -> None:
    model_server.script(text(action(code)), text("Done."))
    result = host.request("run a command")
    assert result.status == "ok", result.content
    assert streams(result, name).count(written) == 1
    assert streams(result).count(written) == 1
    assert written in observation(model_server)


def test_what_forked_workers_print_reaches_the_model_and_the_user(
    host: Host, model_server: ScriptedModelServer
) -> None:
    code = (
        "import multiprocessing\n"
        "def work(i):\n    print(f'worker {i} done', flush=True)\n    return i * i\n"
        "with multiprocessing.get_context('fork').Pool(2) as pool:\n"
        "    print('squares', pool.map(work, range(4)))"
    )
    model_server.script(text(action(code)), text("Done."))
    result = host.request("square numbers in a pool")
    assert result.status == "ok", result.content
    told = observation(model_server)
    for i in range(4):
        assert streams(result).count(f"worker {i} done") == 1
        assert f"worker {i} done" in told
    assert "squares [0, 1, 4, 9]" in told


def test_subprocess_output_keeps_its_place(host: Host, model_server: ScriptedModelServer) -> None:
    code = (
        "import os, subprocess\nprint('one')\nos.system('echo two')\nprint('three')\n"
        "subprocess.run(['echo', 'four'])\nprint('five')\nos.write(1, b'six\\n')\n"
        "display('seven')\nos.write(2, b'eight\\n')\n'nine'"
    )
    model_server.script(text(action(code)), text("Done."))
    result = host.request("count to nine with help")
    assert result.stdout == "one\ntwo\nthree\nfour\nfive\nsix\n"
    words = re.findall(r"\b[a-z]+\b", observation(model_server))
    assert words == ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def test_a_logging_handler_made_before_the_action_is_seen(
    host: Host, model_server: ScriptedModelServer
) -> None:
    """The handler holds the stream that was `sys.stderr` when it was made."""
    made = host.execute(
        "import logging\nearly = logging.getLogger('early')\n"
        "early.addHandler(logging.StreamHandler())\nearly.propagate = False"
    )
    assert made.status == "ok", made.content
    code = "import os\nearly.warning('logged %s', os.environ['CODEACT_API_KEY'])"
    model_server.script(text(action(code)), text("Logged."))
    result = host.request("log the key")
    assert "logged ***" in streams(result, "stderr")
    assert TEST_KEY not in result.everything()
    assert "logged" in observation(model_server)
    assert TEST_KEY not in all_text(model_server.requests[1])


def test_progress_bars_do_not_push_the_result_out(
    host: Host, model_server: ScriptedModelServer
) -> None:
    pytest.importorskip("tqdm")
    code = (
        "from tqdm import tqdm\n"
        "for epoch in range(1, 4):\n"
        "    for _ in tqdm(range(300), mininterval=0, ascii=True, desc=f'epoch {epoch}'):\n"
        "        pass\n"
        "    print(f'epoch {epoch} loss {1 / epoch:.3f}')\n"
        "print('RESULT 42')"
    )
    model_server.script(text(action(code)), text("Trained."))
    result = host.request("train for three epochs")
    assert result.status == "ok"
    assert streams(result, "stderr").count("\r") > 900, "the user saw every update"
    told = observation(model_server)
    assert "truncated" not in told, "the shared hosts cut at 1234 characters"
    for epoch in (1, 2, 3):
        assert f"epoch {epoch} loss" in told
        assert f"epoch {epoch}: 100%" in told
    assert told.endswith("RESULT 42")


# --- the kernel's own key ---------------------------------------------------------------

KEY_SHOWN = {
    "print": "import os\nprint(os.environ['CODEACT_API_KEY'])",
    "stderr": "import os, sys\nprint('key', os.environ['CODEACT_API_KEY'], file=sys.stderr)",
    "result": "import os\nos.environ['CODEACT_API_KEY']",
    "display": (
        "import os\nfrom IPython.display import Markdown, display\n"
        "display(Markdown('key: ' + os.environ['CODEACT_API_KEY']))"
    ),
    "traceback": "import os\nraise RuntimeError(os.environ['CODEACT_API_KEY'])",
    "subprocess": "import os\nos.system('echo $CODEACT_API_KEY')",
    "a character at a time": (
        "import os, sys\nfor c in os.environ['CODEACT_API_KEY']:\n    sys.stdout.write(c)\nprint()"
    ),
    "environment": "import os\nprint(dict(os.environ))",
    "flushed a character at a time": (
        "import os, sys\nfor c in os.environ['CODEACT_API_KEY']:\n"
        "    sys.stdout.write(c)\n    sys.stdout.flush()\nprint()"
    ),
    "two flushed prints": (
        "import os\nkey = os.environ['CODEACT_API_KEY']\n"
        "print(key[:9], end='', flush=True)\nprint(key[9:])"
    ),
    "html": (
        "import os\nfrom IPython.display import HTML, display\n"
        "display(HTML('<b>' + os.environ['CODEACT_API_KEY'] + '</b>'))"
    ),
    "json": (
        "import os\nfrom IPython.display import JSON, display\n"
        "display(JSON({'key': os.environ['CODEACT_API_KEY']}))"
    ),
    "svg": (
        "import os\nfrom IPython.display import SVG, display\n"
        "display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\"><text>'"
        " + os.environ['CODEACT_API_KEY'] + '</text></svg>'))"
    ),
    "%env": "%env CODEACT_API_KEY",
    "!env": "!env",
}


@pytest.mark.parametrize("code", KEY_SHOWN.values(), ids=list(KEY_SHOWN))
def test_the_kernels_key_is_masked_in_what_the_user_sees(
    host: Host, model_server: ScriptedModelServer, code: str
) -> None:
    model_server.script(text(action(code)), text("Shown."))
    result = host.request("show me the key")
    assert result.status == "ok", result.content
    assert TEST_KEY not in result.everything()
    # As the notebook keeps them: a stream's messages joined.
    assert TEST_KEY not in streams(result)
    assert "***" in result.everything()
    assert TEST_KEY not in all_text(model_server.requests[1])


# --- papermill, nbclient ------------------------------------------------------------------

FIXED_ITS_OWN_ERROR = (
    text(action("print(mean(numbers))")),
    text(action("print(sum(numbers) / len(numbers))")),
    text("The mean is 2.0."),
)


def assert_fixed_error_is_visible_but_not_an_error(nb: nbformat.NotebookNode) -> None:
    errors = [o for cell in nb.cells for o in cell.outputs if o.output_type == "error"]
    assert errors == []
    prompt = nb.cells[1]
    stderr = "".join(
        o.text for o in prompt.outputs if o.output_type == "stream" and o.name == "stderr"
    )
    assert "\x1b[" in stderr, "IPython's colored traceback"
    assert "NameError" in ANSI.sub("", stderr)
    assert "print(mean(numbers))" in ANSI.sub("", stderr)
    assert any(o.get("text") == "2.0\n" for o in prompt.outputs)


@pytest.mark.usefixtures("headless")
@pytest.mark.parametrize("name", HOSTS)
def test_papermill_passes_a_request_that_fixed_its_own_error(
    name: HostName, tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    papermill = pytest.importorskip("papermill")
    model_server.script(*FIXED_ITS_OWN_ERROR)
    source, ran = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(host_notebook(name, "numbers = [1, 2, 3]", "print the mean of numbers"), source)
    papermill.execute_notebook(str(source), str(ran), progress_bar=False, cwd=str(tmp_path))
    assert_fixed_error_is_visible_but_not_an_error(nbformat.read(ran, as_version=4))


@pytest.mark.usefixtures("headless")
@pytest.mark.parametrize("name", HOSTS)
def test_papermill_still_fails_a_request_that_failed(
    name: HostName, tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    papermill = pytest.importorskip("papermill")
    model_server.script(*[text(action("1 / 0")) for _ in range(4)])
    source = tmp_path / "in.ipynb"
    nbformat.write(
        host_notebook(name, "x = 1", "divide one by zero again and again", "after = 1"), source
    )
    with pytest.raises(papermill.PapermillExecutionError, match="RetryBudgetExhausted"):
        papermill.execute_notebook(str(source), str(tmp_path / "out.ipynb"), progress_bar=False)


@pytest.mark.usefixtures("headless")
@pytest.mark.parametrize("name", HOSTS)
@pytest.mark.parametrize("runner", ["nbclient", "nbconvert"])
def test_nbclient_and_nbconvert_pass_a_request_that_fixed_its_own_error(
    name: HostName, runner: str, model_server: ScriptedModelServer
) -> None:
    model_server.script(*FIXED_ITS_OWN_ERROR)
    nb = host_notebook(name, "numbers = [1, 2, 3]", "print the mean of numbers")
    if runner == "nbclient":
        NotebookClient(nb, timeout=60).execute()
    else:
        from nbconvert.preprocessors import ExecutePreprocessor

        ExecutePreprocessor(timeout=60).preprocess(nb, {})
    assert_fixed_error_is_visible_but_not_an_error(nb)


# --- JupyterLab with the extension ----------------------------------------------------------


@pytest.fixture
def lab_client(
    jupyter_path: Path, model_server: ScriptedModelServer
) -> Iterator[BlockingKernelClient]:
    """A `codeact` kernel with the extension's comm open, as JupyterLab has it."""
    with running_kernel(jupyter_path, kernel_env(model_server.url)) as (_, client):
        opened = client.session.msg(
            "comm_open",
            {"comm_id": "lab", "target_name": TARGET, "data": {"protocol": PROTOCOL}},
        )
        client.shell_channel.send(opened)
        execute(client, "pass")
        yield client


def test_with_the_lab_extension_a_failed_action_keeps_a_real_error_output(
    lab_client: BlockingKernelClient, model_server: ScriptedModelServer
) -> None:
    model_server.script(
        text(action("import os\nprint(os.environ['CODEACT_API_KEY'])\nprint(mean([1, 2]))")),
        text(action("print(sum([1, 2]) / 2)")),
        text("The mean is 1.5."),
    )
    content = {"code": "print the mean", "silent": False, "allow_stdin": True}
    message = lab_client.session.msg("execute_request", content, metadata={"cellId": "prompt"})
    lab_client.shell_channel.send(message)
    messages = collect(lab_client, message["header"]["msg_id"])
    ends = [
        m["content"]["data"]
        for m in messages
        if m["msg_type"] == "comm_msg" and m["content"]["data"]["type"] == "action_end"
    ]
    failed = ends[0]
    assert failed["status"] == "error"
    assert [o["output_type"] for o in failed["outputs"]] == ["stream", "error"]
    assert failed["outputs"][0]["text"] == "***\n", "the key masked in the generated cell"
    assert [m for m in messages if m["msg_type"] == "error"], "a real error on IOPub"
    assert TEST_KEY not in repr(messages)


def collect(client: BlockingKernelClient, msg_id: str, timeout: float = 30) -> Messages:
    """IOPub messages of `msg_id` until it is idle again."""
    deadline = time.monotonic() + timeout
    messages: Messages = []
    while time.monotonic() < deadline:
        try:
            message = client.get_iopub_msg(timeout=0.1)
        except Exception:
            continue
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            return messages
        messages.append(message)
    raise TimeoutError(f"no idle for {msg_id}")
