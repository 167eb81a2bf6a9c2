"""Secrets never reach the model, driven through real kernels as a user drives them.

The user defines secret-looking variables of every kind (short plain-word passwords,
dicts, a config object, a wrapped secret, bytes, default arguments), the kernel's
environment holds `*_KEY` variables with hex keys, and the model's actions print them
every way there is: `print`, `repr`, `os.environ`, `dict(os.environ)`, JSON, `!env`,
`%env`. The scripted server's request log must hold none of the values, while what is
no secret (`key = "id"`, `SORT_KEY=date`, `max_tokens = 512`) still reaches the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kernel_harness import HOSTS, TEST_KEY, Host, all_text, kernel_env, start_host
from model_server import ScriptedModelServer, text

from codeact_kernel.secrets import REDACTED

pytest_plugins = ("kernel_harness",)

WEATHER_KEY = "0123456789abcdef0123456789abcdef"
MAPBOX_KEY = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SECRET_ENVIRONMENT = {
    "WEATHER_KEY": WEATHER_KEY,
    "MAPBOX_KEY": MAPBOX_KEY,
    "SMTP_PASSWORD": "mailbox-pass",
    "SERVICE_TOKEN": "t1",
    "GITHUB_PAT": "plain-pat-value",
}
PUBLIC_ENVIRONMENT = {"SORT_KEY": "date", "REPORT_TITLE": "quarterly"}

USER_CELL = """\
from dataclasses import dataclass

db_password = "letmein"
PASSWORD = "abc"
api_token = "x1"
secret = "hunter2"
raw_password = b"bytes-secret"
config = {"password": "pw", "db": {"host": "db.local", "password": "deep-secret"}}


@dataclass
class Database:
    host: str
    password: str


database = Database("db.local", "attribute-secret")


class SecretStr:
    def __init__(self, value):
        self._secret_value = value

    def __repr__(self):
        return "SecretStr('**********')"


api_key = SecretStr("wrapped-secret")


def connect(host="db.local", password="default-secret"):
    return host


key = "id"
primary_key = "id"
max_tokens = 512
token_count = 3
"""

ACTIONS = [
    """\
import json, os
print(db_password, PASSWORD, api_token, secret, raw_password)
print(config, config["db"]["password"], json.dumps(config))
print(database, database.password, api_key._secret_value, connect.__defaults__)
print(f"password={PASSWORD} token: {api_token!r}")
print(os.environ["WEATHER_KEY"], os.getenv("MAPBOX_KEY"))
print(dict(os.environ))
print(json.dumps(dict(os.environ)))
print(os.environ)""",
    "!env",
    "%env",
    "import os\nos.environ",
]

# At least MIN_SECRET_LENGTH characters: never anywhere in what is sent.
LONG_SECRETS = [
    "letmein",
    "hunter2",
    "bytes-secret",
    "deep-secret",
    "attribute-secret",
    "wrapped-secret",
    "default-secret",
    "mailbox-pass",
    "plain-pat-value",
    WEATHER_KEY,
    MAPBOX_KEY,
    TEST_KEY,
]
# Shorter: never as a value in the forms they are printed and listed in.
SHORT_SECRET_FORMS = [
    "PASSWORD = 'abc'",
    'PASSWORD = "abc"',
    'api_token = "x1"',
    "'password': 'pw'",
    '"password": "pw"',
    "password=abc",
    "token: 'x1'",
    "SERVICE_TOKEN=t1",
    "'SERVICE_TOKEN': 't1'",
    '"SERVICE_TOKEN": "t1"',
    "'PASSWORD': 'abc'",
]


def fence(code: str) -> str:
    return f"```python\n{code}\n```"


@pytest.fixture(scope="module", params=HOSTS)
def secret_host(
    request: pytest.FixtureRequest,
    jupyter_path: Path,
    ipython_dir: Path,
    _model_server_session: ScriptedModelServer,
) -> Iterator[Host]:
    """A host whose environment holds secrets, with room for every observation whole."""
    env = kernel_env(
        _model_server_session.url,
        IPYTHONDIR=str(ipython_dir),
        CODEACT_OBSERVATION_CHARS="200000",
        CODEACT_CONTEXT_TOKENS="200000",
        **SECRET_ENVIRONMENT,
        **PUBLIC_ENVIRONMENT,
    )
    with start_host(request.param, jupyter_path, env) as host:
        yield host


def contents(request: dict[str, Any]) -> str:
    """The messages of one logged model request as the model reads them."""
    return "\n\n".join(str(message["content"]) for message in request["body"]["messages"])


def test_secrets_printed_every_way_never_reach_the_model(
    secret_host: Host, model_server: ScriptedModelServer
) -> None:
    host = secret_host
    defined = host.execute(USER_CELL)
    assert defined.status == "ok", defined.content
    model_server.script(*[text(fence(action)) for action in ACTIONS], text("Shown."))

    result = host.request("show me the configuration and the environment")

    assert result.status == "ok", result.content
    assert "letmein" in result.stdout, "the user still sees their own output"
    requests = model_server.requests
    assert len(requests) == len(ACTIONS) + 1
    for request in requests:
        sent = all_text(request) + contents(request)
        leaked = [value for value in LONG_SECRETS if value in sent]
        assert not leaked, f"sent to the model: {leaked}"
    last = contents(requests[-1])
    assert not [form for form in SHORT_SECRET_FORMS if form in last]
    # Every way of listing the environment reached the model, redacted.
    for listed in (
        f"WEATHER_KEY={REDACTED}",
        f"SERVICE_TOKEN={REDACTED}",
        f"'WEATHER_KEY': '{REDACTED}'",
        f'"MAPBOX_KEY": "{REDACTED}"',
        "environ({",
    ):
        assert listed in last, listed


def test_what_is_no_secret_still_reaches_the_model(
    secret_host: Host, model_server: ScriptedModelServer
) -> None:
    host = secret_host
    assert host.execute(USER_CELL).status == "ok"
    model_server.script(text(fence("!env")), text("Listed."))

    assert host.request("list the environment").status == "ok"

    system, last = (
        model_server.requests[-1]["body"]["messages"][0],
        contents(model_server.requests[-1]),
    )
    summary = system["content"]
    for line in (
        "key: str = 'id'",
        "primary_key: str = 'id'",
        "max_tokens: int = 512",
        "token_count: int = 3",
        "db_password: str  # value hidden",
        "PASSWORD: str  # value hidden",
        "api_key: SecretStr",
        "def connect(host='db.local', password=<str>)",
    ):
        assert line in summary, line
    assert "SORT_KEY=date" in last
    assert "REPORT_TITLE=quarterly" in last
    assert f"WEATHER_KEY={REDACTED}" in last
