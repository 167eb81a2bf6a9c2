"""`python -m codeact_kernel`: the kernel launcher that Jupyter runs, and `install`.

Jupyter starts the kernel with the argv of the kernelspec that install.py writes:
`python -m codeact_kernel -f CONNECTION_FILE`. Those options, and ipykernel's others
(`--debug`, `--Class.trait=value`), go to its IPKernelApp unchanged. Help, version, any
word that is not an option and any option ipykernel does not know are answered here:
ipykernel would print its own help and IPython's version, and start a kernel that waits
forever for a client after a mistyped `instal` or `--bogus=1`.
"""

from __future__ import annotations

import difflib
import platform
import sys
from collections.abc import Collection, Iterable, Sequence
from importlib import metadata

from .version import __version__

PROG = "python -m codeact_kernel"
COMMANDS = ("install",)

USAGE = f"""\
usage: {PROG} install [--user | --sys-prefix | --prefix PREFIX] [--name NAME]
       {PROG} -f CONNECTION_FILE [IPYKERNEL OPTIONS]
       {PROG} --help | --version"""

HELP = f"""\
codeact-kernel {__version__}: the CodeAct (Python 3) Jupyter kernel. Code cells run as in IPython;
a cell in natural language goes to an LLM, which answers with code that runs in your namespace.

{USAGE}

  install     Install the `codeact` kernelspec, so Jupyter offers "CodeAct (Python 3)":
              for this environment (--sys-prefix), for you (--user), under PREFIX, or
              system-wide (the default).
  -f FILE     Start the kernel on the connection file FILE. Jupyter does this itself, as
              the kernelspec says; you rarely need to. Without -f the kernel writes its own
              connection file and waits for a client (`jupyter console --existing`). The
              other options are ipykernel's: `python -m ipykernel --help-all` lists them.

The model and settings come from the environment of the process that starts the kernel
(JupyterLab, nbclient, papermill…), or from c.CodeAct.<setting> in ipython_kernel_config.py:
  CODEACT_MODEL          provider:model, e.g. openai:gpt-4o-mini, anthropic:claude-sonnet-4-5,
                         ollama:qwen2.5-coder:7b; openai:<model> for any OpenAI-compatible server
  CODEACT_BASE_URL       the model server's URL, e.g. http://localhost:8000/v1 for vLLM
  CODEACT_API_KEY        the key; OPENAI_API_KEY and ANTHROPIC_API_KEY also work
  CODEACT_MAX_STEPS      code actions per request before it stops
  CODEACT_APPROVAL       auto, or ask to confirm each action before it runs
  CODEACT_ACTION_FORMAT  markdown, or execute for <execute> tags (the CodeActAgent models)
In a notebook, `%codeact config` shows every setting and where it came from.
The README (the package's description) documents all of it."""


def version_text() -> str:
    """This package's version, then those of the packages that make up the kernel."""
    parts = [f"{name} {metadata.version(name)}" for name in ("ipykernel", "IPython")]
    parts.append(f"Python {platform.python_version()}")
    return f"codeact-kernel {__version__} ({', '.join(parts)})"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["install"]:
        from .install import main as install_main

        return install_main(args[1:])
    # As in traitlets: what follows `--` is not ours to interpret.
    ours = args[: args.index("--")] if "--" in args else args
    if args[:1] == ["help"] or {"-h", "--help", "--help-all"} & set(ours):
        print(HELP)
        return 0
    if {"-V", "--version"} & set(ours):
        print(version_text())
        return 0
    if args and not args[0].startswith("-"):
        return usage_error(f"unknown command {args[0]!r}{_suggestion(args[0])}")
    return launch(args)


def launch(args: list[str]) -> int:
    """Run the kernel as ipykernel's launcher would, after refusing stray words."""
    from ipykernel.kernelapp import IPKernelApp

    from .kernel import CodeActKernel

    app = IPKernelApp.instance(kernel_class=CodeActKernel)
    # traitlets takes any `--word=value` for configuration and starts a kernel that
    # waits forever (and `--word` alone gets argparse's 30-line usage with "expected
    # one argument"): an option ipykernel does not know is refused here, in our words.
    problem = _option_problem(args, _option_names(app.aliases), _option_names(app.flags))
    if problem:
        return usage_error(problem)
    # Parsed once here, before anything binds a port or writes a connection file, and
    # again by initialize(). Malformed options exit here with argparse's status 2.
    try:
        app.parse_command_line(args)
    except SystemExit as exit_:
        if exit_.code:
            print(f"Run `{PROG} --help` for usage.", file=sys.stderr)
        raise
    if app.extra_args:
        return usage_error(f"unexpected argument {app.extra_args[0]!r}")
    app.initialize(args)
    app.start()
    return 0


def usage_error(message: str) -> int:
    print(f"{PROG}: {message}\n{USAGE}\nRun `{PROG} --help` for more.", file=sys.stderr)
    return 2


def _suggestion(word: str, options: Collection[str] = ()) -> str:
    """A command, or an option as it is written, close to `word`."""
    if word.startswith("-"):
        candidates = {*COMMANDS, *(_spelled(name) for name in options)}
        bare = {candidate.lstrip("-"): candidate for candidate in candidates}
        close = difflib.get_close_matches(word.lstrip("-"), bare, n=1)
        return f" (did you mean {bare[close[0]]!r}?)" if close else ""
    close = difflib.get_close_matches(word, COMMANDS, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _option_names(keys: Iterable[str | tuple[str, ...]]) -> set[str]:
    """The names of traitlets aliases or flags, from their table's keys (a key may name
    several)."""
    return {name for key in keys for name in ((key,) if isinstance(key, str) else key)}


def _spelled(name: str) -> str:
    return f"-{name}" if len(name) == 1 else f"--{name}"


def _option_problem(args: Sequence[str], aliases: set[str], flags: set[str]) -> str:
    """What is wrong with the options, in one line ("" if nothing): an option that is
    neither ipykernel's nor a `--Class.trait` setting, or one that lacks its value."""
    ours = list(args[: args.index("--")] if "--" in args else args)
    for index, arg in enumerate(ours):
        if not arg.startswith("-") or arg == "-":
            continue  # an option's value, or a stray word (refused later)
        name, equals, _ = arg.lstrip("-").partition("=")
        spelled = arg.partition("=")[0]
        if name not in aliases | flags and "." not in name:
            return f"unknown option {spelled!r}{_suggestion(spelled, aliases | flags)}"
        following = ours[index + 1] if index + 1 < len(ours) else "-"
        if name in aliases and name not in flags and not equals and following.startswith("-"):
            return f"option {spelled!r} needs a value"
    return ""


if __name__ == "__main__":
    sys.exit(main())
