"""commands.py in process: `%codeact` settings commands over a session whose environment
or config file holds values that are not valid.

Such a value fails requests with a message naming it, but never the commands that show
and override settings. The commands' other output is tested through the magic in
test_magics.py and through the kernel in test_kernel.py.
"""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from codeact_kernel.commands import Commands
from codeact_kernel.session import Session
from codeact_kernel.settings import CodeAct, Settings

BAD_ENVIRONMENT = {
    "CODEACT_MODEL": "openai:test-model",
    "CODEACT_IDLE_TIMEOUT": "abc",
    "CODEACT_MAX_STEPS": "0",
}


def commands(shell: InteractiveShell, environ: dict[str, str], **config: object) -> Commands:
    return Commands(Session(shell, CodeAct(config=Config(CodeAct=config)), environ=environ))


def printed(commands: Commands, line: str, capsys: pytest.CaptureFixture[str]) -> str:
    commands.run(line)
    return capsys.readouterr().out


def test_status_and_config_show_bad_values_instead_of_failing(
    ipython: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    line = commands(ipython, BAD_ENVIRONMENT, approval="maybe")
    status = printed(line, "", capsys)
    assert "Problem: The environment variable CODEACT_IDLE_TIMEOUT is not valid" in status
    assert "Problem: The environment variable CODEACT_MAX_STEPS is not valid" in status
    assert "Problem: c.CodeAct.approval in a Jupyter/IPython config file is not valid" in status
    config = printed(line, "config", capsys)
    rows = {row.split()[0]: row for row in config.splitlines()}
    assert rows["idle_timeout"].split()[1:] == ["(not", "valid,", "see", "below)", "environment"]
    assert rows["approval"].endswith("config")
    assert config.count("Problem: ") == 3
    shown = printed(line, "idle_timeout", capsys)
    assert shown.startswith("idle_timeout: The environment variable CODEACT_IDLE_TIMEOUT")


def test_an_override_wins_while_other_settings_are_still_bad(
    ipython: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    line = commands(ipython, BAD_ENVIRONMENT)
    assert printed(line, "idle_timeout 5", capsys) == "idle_timeout = 5.0 (for this session)\n"
    assert printed(line, "steps 3", capsys) == "max_steps = 3 (for this session)\n"
    settings = line.session.settings()
    assert (settings.idle_timeout, settings.max_steps, settings.problems) == (5.0, 3, {})
    unset = printed(line, "unset idle_timeout", capsys)
    assert unset.startswith("idle_timeout: The environment variable CODEACT_IDLE_TIMEOUT")
    assert "`%codeact idle_timeout VALUE`" in unset


def test_a_bad_override_is_refused_in_the_settings_words(ipython: InteractiveShell) -> None:
    line = commands(ipython, BAD_ENVIRONMENT)
    with pytest.raises(UsageError, match="Setting idle_timeout needs a number, not 'soon'"):
        line.run("idle_timeout soon")
    with pytest.raises(UsageError, match=r"context_tokens must be at least 1000.*not 1"):
        line.run("context_tokens 1")
    assert line.session.overrides == {}


@pytest.mark.parametrize("word", ["nope", "max-step", "api"])
def test_unset_names_an_unknown_setting_and_lists_the_valid_ones(
    ipython: InteractiveShell, word: str
) -> None:
    with pytest.raises(UsageError) as raised:
        commands(ipython, {}).run(f"unset {word}")
    message = str(raised.value)
    assert message.startswith(f"Unknown setting {word!r}; the settings are: model, base_url,")
    assert all(name in message for name in Settings().public())


def test_unset_takes_one_name_and_never_shows_the_key(ipython: InteractiveShell) -> None:
    line = commands(ipython, {"CODEACT_API_KEY": "sk-test-SECRET-0123456789abcdef"})
    for rest in ("", "model approval"):
        with pytest.raises(UsageError, match="takes one setting name"):
            line.run(f"unset {rest}")
    with pytest.raises(UsageError, match="never from a cell") as raised:
        line.run("unset api_key")
    assert "sk-test-SECRET" not in str(raised.value)


def test_the_endpoints_default_temperature_overrides_the_environment(
    ipython: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    for value in ("0.5", "warm"):
        line = commands(ipython, {"CODEACT_TEMPERATURE": value})
        shown = printed(line, "temperature default", capsys)
        assert shown == "temperature = (endpoint default) (for this session)\n"
        settings = line.session.settings()
        assert settings.temperature is None and settings.sources["temperature"] == "session"
