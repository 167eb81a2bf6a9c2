"""The secret rules: which names and values are secret, redaction for the model, masking
for people."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from codeact_kernel.secrets import (
    REDACTED,
    Redactor,
    find_secrets,
    looks_like_key,
    looks_secret_name,
    mask,
    mask_url,
    redact,
)

OPENAI_KEY = "sk-proj-4fQz9LmX2vR7tK1pW8yB3nC6"

# Shared with the namespace summary's tests, which check that these stay hidden.
SECRET_NAMES = [
    "OPENAI_API_KEY",
    "api_key",
    "apiKey",
    "APIKey",
    "db_password",
    "dbPassword",
    "PASSWD",
    "pwd",
    "GITHUB_TOKEN",
    "accesstoken",
    "client_secret",
    "credentials",
    "auth",
    "private_key",
    "key",
]
KEY_SHAPED = [
    OPENAI_KEY,
    "sk-ant-api03-abcdefghijklmnopqrstuv",
    "ghp_abcdefghijklmnopqrstuvwxyz0123",
    "AKIAIOSFODNN7EXAMPLE",
    "postgres://admin:s3cr3t@db.example.com/sales",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijk",
    "Bearer abcdefghijklmnop123",
    "a8F3kQ9zL2mX7pR4tW1yB6",
]


# --- names and values ---------------------------------------------------------------


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names(name: str) -> None:
    assert looks_secret_name(name)


@pytest.mark.parametrize("name", ["monkey", "keyboard", "tokenizer_name", "passage", "turkey"])
def test_secret_words_must_be_whole_word_parts(name: str) -> None:
    assert not looks_secret_name(name)


@pytest.mark.parametrize(
    ("name", "strict"),
    [("api_key", True), ("SECRET_KEY", True), ("key", False), ("max_tokens", False)],
)
def test_common_words_are_secret_only_when_qualified_in_strict_mode(
    name: str, strict: bool
) -> None:
    assert looks_secret_name(name)
    assert looks_secret_name(name, strict=True) is strict


@pytest.mark.parametrize("value", KEY_SHAPED)
def test_key_shaped_values(value: str) -> None:
    assert looks_like_key(value)


@pytest.mark.parametrize(
    "value",
    ["/home/user/data/sales_2023.csv", "sales_by_region_2023", "hello world", "disk-usage-report"],
)
def test_ordinary_strings_are_not_keys(value: str) -> None:
    assert not looks_like_key(value)


def test_find_secrets_collects_what_to_redact() -> None:
    ns = {
        "OPENAI_API_KEY": OPENAI_KEY,
        "db_password": "hunter2",
        "settings": {"secret_key": "s3cr3t-value"},
        "key": "region",  # a loop variable, most likely: not redacted everywhere
        "pwd": "/home/user",  # a path, not a password
        "token": "abc",  # too short to redact verbatim
        "note": "hello",
    }
    environ = {"CODEACT_API_KEY": "env-secret-123", "PWD": "/work", "HOME": "/root"}
    assert find_secrets(ns.items(), environ=environ) == {
        OPENAI_KEY,
        "hunter2",
        "s3cr3t-value",
        "env-secret-123",
    }


def test_find_secrets_runs_no_user_code() -> None:
    class Loud(str):
        def __hash__(self) -> int:
            raise RuntimeError("hash")

        def __len__(self) -> int:
            raise RuntimeError("len")

    class LoudDict(dict[str, str]):
        def items(self) -> object:
            raise RuntimeError("items")

    named = [("api_key", Loud("s3cr3t-value")), ("config", LoudDict(api_key="s3cr3t-value"))]
    assert find_secrets(named, environ={}) == frozenset()


# --- redaction, for the model ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('db_password = "hunter2"', f'db_password = "{REDACTED}"'),
        ("API_KEY: str = 'abc'", f"API_KEY: str = '{REDACTED}'"),
        ("os.environ['GITHUB_TOKEN'] = \"t0k\"", f"os.environ['GITHUB_TOKEN'] = \"{REDACTED}\""),
        ('connect(password="pw1", user="bob")', f'connect(password="{REDACTED}", user="bob")'),
        ('{"api_key": "abc", "model": "m"}', f'{{"api_key": "{REDACTED}", "model": "m"}}'),
        ('SECRET = """a\nb"""', f'SECRET = """{REDACTED}"""'),
        ("OPENAI_API_KEY=xyz-123 HOME=/root", f"OPENAI_API_KEY={REDACTED} HOME=/root"),
        ("note = \"password='p4ss'\"", f"note = \"password='{REDACTED}'\""),
        ("postgres://me:s3cret@db/x", f"postgres://me:{REDACTED}@db/x"),
        (f"key is {OPENAI_KEY}.", f"key is {REDACTED}."),
        ("Authorization: Bearer abcdef0123456789", f"Authorization: {REDACTED}"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
            REDACTED,
        ),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "connect(password=pw, user=name)",
        'if password == "x": pass',
        "{'Key': 'data/sales.csv', 'Size': 10}",
        "key = 'region'",
        "tokens = 512",
        'print("hello world")',
        "postgres://db.example.com/sales",
        "password = ''",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_redact_known_values_anywhere() -> None:
    assert redact("the pass is hunter2, ok", ["hunter2", "abc"]) == f"the pass is {REDACTED}, ok"


def test_a_secret_inside_another_is_replaced_with_it() -> None:
    assert redact("x s3cr3t-value-2 y", ["s3cr3t", "s3cr3t-value-2"]) == f"x {REDACTED} y"


def test_one_redactor_per_set_of_values_and_it_never_shows_them() -> None:
    redactor = Redactor.of(["hunter2", "abc"])
    assert Redactor.of(["abc", "hunter2", "hunter2"]) is redactor
    # Too short to redact verbatim, so not part of what makes the redactor.
    assert Redactor.of(["hunter2"]) is redactor
    assert "hunter2" not in repr(redactor)


@given(
    value=st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=5, max_size=40),
    before=st.text(max_size=40),
    after=st.text(max_size=40),
)
def test_a_known_value_never_survives_redaction(value: str, before: str, after: str) -> None:
    # The marker itself is what redaction writes, so it may contain such a value.
    assume(value not in REDACTED)
    assert value not in redact(before + value + after + value, [value])


# --- masking, for people -------------------------------------------------------------


def test_mask_hides_known_keys_and_key_shapes_but_keeps_their_kind() -> None:
    text = "got sk-proj-abcdefgh12345 and Bearer abcdef0123456789 for my-key-123456789"
    assert mask(text, ["my-key-123456789"]) == "got sk-*** and Bearer *** for ***"
    assert mask("AKIAIOSFODNN7EXAMPLE") == "***"


def test_mask_url() -> None:
    assert mask_url("http://user:pa55@host:8000/v1") == "http://user:***@host:8000/v1"
    assert mask_url("http://host:8000/v1") == "http://host:8000/v1"
    assert mask_url("postgres://me@db/x") == "postgres://me@db/x"
