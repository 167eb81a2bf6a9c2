"""The secret rules: which names and values are secret, redaction for the model, masking
for people."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from codeact_kernel.secrets import (
    MIN_SECRET_LENGTH,
    REDACTED,
    Redactor,
    find_secrets,
    is_secret_value,
    looks_like_key,
    looks_secret_name,
    mask,
    mask_url,
    redact,
)

OPENAI_KEY = "sk-proj-4fQz9LmX2vR7tK1pW8yB3nC6"
HEX_KEY = "0123456789abcdef0123456789abcdef"

# Names whose values are secret whatever they look like. Shared with the namespace
# summary's tests, which check that these stay hidden.
SECRET_NAMES = [
    "OPENAI_API_KEY",
    "api_key",
    "apiKey",
    "APIKey",
    "db_password",
    "dbPassword",
    "PASSWORD",
    "PASSWD",
    "pwd",
    "db_pw",
    "DB_PASS",
    "secret",
    "client_secret",
    "GITHUB_TOKEN",
    "api_token",
    "token",
    "accesstoken",
    "access_tokens",
    "credentials",
    "creds",
    "auth",
    "authorization",
    "private_key",
    "SECRET_KEY",
    "secretkey",
    "WEATHER_KEY",
    "MAPBOX_KEY",
    "SENTRY_DSN",
    "GITHUB_PAT",
    "AZURE_DEVOPS_PAT",
    "passphrase",
    "password2",
    "token_value",
]
# Names that hold keys of dicts or tables as often as credentials: the value decides.
MAYBE_NAMES = ["key", "keys", "sort_key", "primary_key", "weather_key", "cookie", "private"]
# A regular expression's constant, named for what it matches: the value decides too.
MAYBE_NAMES += ["EMAIL_PAT", "DATE_PAT", "WORD_PAT"]
# Names that mention a secret word, or look like they do, but hold none.
PLAIN_NAMES = [
    "keyboard",
    "monkey",
    "turkey",
    "hotkey",
    "tokenizer_name",
    "passage",
    "max_tokens",
    "maxTokens",
    "prompt_tokens",
    "tokens",
    "token_count",
    "num_keys",
    "eos_token",
    "pad_token",
    "forward_pass",
    "api_key_env",
    "password_file",
    "PASSWORD_STORE_DIR",
    "token_url",
    "secret_name",
    "is_secret",
    "use_auth",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN",
    "MIN_SECRET_LENGTH",
    "KEY_PATTERN",
    "SSH_AUTH_SOCK",
    "PAT",
    "pat",
    "PAT_FILE",
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
# Values under a secret name that must never be sent, whatever they look like.
PLAIN_PASSWORDS = ["letmein", "hunter2", "abc", "x1", "pw", "1234", "a", "Passw0rd!", HEX_KEY]
ORDINARY_VALUES = ["id", "date", "region", "customer_id", "sales_by_region_2023", "data/x.csv"]


# --- names ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names(name: str) -> None:
    assert looks_secret_name(name, strict=True)
    assert looks_secret_name(name)


@pytest.mark.parametrize("name", MAYBE_NAMES)
def test_names_that_hold_a_key_only_sometimes(name: str) -> None:
    assert looks_secret_name(name)
    assert not looks_secret_name(name, strict=True)


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_names_that_only_mention_a_secret_word(name: str) -> None:
    assert not looks_secret_name(name)


@pytest.mark.parametrize(("constant", "variable"), [("WEATHER_KEY", "weather_key")])
def test_a_key_in_capitals_is_a_credential_in_lower_case_it_may_be(
    constant: str, variable: str
) -> None:
    # Constants and environment variables named *_KEY hold keys; `weather_key` may
    # name a dict's key, so its value decides.
    assert looks_secret_name(constant, strict=True)
    assert not looks_secret_name(variable, strict=True)
    assert is_secret_value(variable, HEX_KEY)
    assert not is_secret_value(variable, "temperature")


@pytest.mark.parametrize("name", ["SORT_KEY", "PRIMARY_KEY", "CACHE_KEY", "GROUP_KEY"])
def test_a_data_structures_key_in_capitals_is_no_credential(name: str) -> None:
    assert not looks_secret_name(name, strict=True)
    assert not is_secret_value(name, "date")


# --- values ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", KEY_SHAPED)
def test_key_shaped_values(value: str) -> None:
    assert looks_like_key(value)
    assert is_secret_value("setting", value)


@pytest.mark.parametrize(
    "value",
    ["/home/user/data/sales_2023.csv", "sales_by_region_2023", "hello world", "disk-usage-report"],
)
def test_ordinary_strings_are_not_keys(value: str) -> None:
    assert not looks_like_key(value)


@pytest.mark.parametrize("name", SECRET_NAMES)
@pytest.mark.parametrize("value", [*PLAIN_PASSWORDS, " padded ", "pässwört", "two words"])
def test_any_value_under_a_secret_name_is_secret(name: str, value: str) -> None:
    assert is_secret_value(name, value)


@pytest.mark.parametrize("name", ["GOOGLE_APPLICATION_CREDENTIALS", "pwd", "ssh_private_key"])
def test_a_path_under_a_secret_name_says_where_the_secret_is(name: str) -> None:
    assert not is_secret_value(name, "/home/me/.config/credentials.json")
    assert not is_secret_value(name, "~/.ssh/id_ed25519")


@pytest.mark.parametrize("name", MAYBE_NAMES)
def test_under_a_maybe_name_only_a_key_like_value_is_secret(name: str) -> None:
    for value in ORDINARY_VALUES:
        assert not is_secret_value(name, value), value
    for value in [HEX_KEY, HEX_KEY.upper()[:20], "kq9ZL2mX7pR4tW1yB6c3", *KEY_SHAPED]:
        assert is_secret_value(name, value), value


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_under_a_plain_name_only_a_key_shape_is_secret(name: str) -> None:
    for value in [*ORDINARY_VALUES, "letmein", "512"]:
        assert not is_secret_value(name, value), value
    assert is_secret_value(name, OPENAI_KEY)


# --- finding the secrets of a namespace -------------------------------------------------


class SecretStr:
    """Like pydantic's: hides its value from `repr`, keeps it in an attribute."""

    def __init__(self, value: str) -> None:
        self._secret_value = value

    def __repr__(self) -> str:
        return "SecretStr('**********')"


@dataclass
class DatabaseConfig:
    host: str
    password: str
    user: str = "analyst"


def test_find_secrets_collects_what_to_redact() -> None:
    ns = {
        "OPENAI_API_KEY": OPENAI_KEY,
        "db_password": "letmein",
        "PASSWORD": "abc",
        "api_token": "x1",
        "settings": {"secret_key": "s3cr3t-value", "model": "gpt"},
        "nested": {"db": {"connection": {"password": "deep-pw"}}},
        "config": DatabaseConfig("db.local", "attr-pw"),
        "login": SecretStr("wrapped-pw"),
        "raw_token": b"bytes-token",
        "creds": ("tuple-user", "tuple-pw"),
        "api_keys": {"weather": "cafe0123"},
        "key": "region",  # a loop variable, most likely
        "pwd": "/home/user",  # a path, not a password
        "token_count": "3",
        "note": "hello",
    }
    environ = {
        "CODEACT_API_KEY": "env-secret-123",
        "WEATHER_KEY": HEX_KEY,
        "SHORT_TOKEN": "ab",
        "PWD": "/work",
        "HOME": "/root",
        "SORT_KEY": "date",
    }
    assert find_secrets(ns.items(), environ=environ) == {
        OPENAI_KEY,
        "letmein",
        "abc",
        "x1",
        "s3cr3t-value",
        "deep-pw",
        "attr-pw",
        "wrapped-pw",
        "bytes-token",
        "tuple-user",
        "tuple-pw",
        "cafe0123",
        "env-secret-123",
        HEX_KEY,
        "ab",
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("key", "id"),
        ("primary_key", "id"),
        ("sort_key", "date"),
        ("keyboard", "us"),
        ("monkey", "george"),
        ("turkey", "roast"),
        ("max_tokens", "512"),
        ("token_count", "3"),
        ("eos_token", "</s>"),
        ("password_file", "/run/secrets/db"),
        ("api_key_env", "OPENAI_API_KEY"),
        ("tokens", "the cat sat"),
        ("config", {"key": "id", "sort_key": "date"}),
    ],
)
def test_find_secrets_leaves_what_is_no_secret(name: str, value: object) -> None:
    assert find_secrets([(name, value)], environ={}) == frozenset()


def test_find_secrets_runs_no_user_code() -> None:
    class Loud(str):
        def __hash__(self) -> int:
            raise RuntimeError("hash")

        def __len__(self) -> int:
            raise RuntimeError("len")

    class LoudDict(dict[str, str]):
        def items(self) -> object:
            raise RuntimeError("items")

    class LoudAttributes:
        def __getattribute__(self, name: str) -> object:
            raise RuntimeError(name)

        def __getattr__(self, name: str) -> object:
            raise RuntimeError(name)

    class FakeDict:
        @property
        def __dict__(self) -> dict[str, str]:  # type: ignore[override]
            raise RuntimeError("__dict__")

    loud = LoudAttributes()
    object.__setattr__(loud, "password", "attr-pw")
    named = [
        ("api_key", Loud("s3cr3t-value")),
        ("config", LoudDict(api_key="s3cr3t-value")),
        ("client", FakeDict()),
    ]
    assert find_secrets(named, environ={}) == frozenset()
    # Attributes are read from the instance dict, never through the class's code.
    assert find_secrets([("client", loud)], environ={}) == {"attr-pw"}


def test_find_secrets_looks_first_where_secrets_are() -> None:
    # Past its budget the walk stops; containers under a secret name go first.
    ns: dict[str, object] = {
        f"table{i}": {f"k{j}": f"v{j}" for j in range(5000)} for i in range(50)
    }
    ns["logs"] = [f"line {i}" for i in range(100_000)]
    ns["zz_secrets"] = {"db": "found-late-pw"}
    assert find_secrets(ns.items(), environ={}) == {"found-late-pw"}


# --- redaction, for the model ----------------------------------------------------------

# Where a value shows in what actions print and cells contain. `{name}` and `{value}` are
# filled in; redaction must give the same text with `[redacted]` for the value.
CONTEXTS = [
    '{name} = "{value}"',
    "{name}: str = '{value}'",
    "cfg.{name} = '{value}'",
    "os.environ['{name}'] = \"{value}\"",
    "connect(host='db', {name}='{value}')",
    "Config(host='db', {name}='{value}', port=5432)",
    "{{'{name}': '{value}', 'host': 'db'}}",
    '{{"{name}": "{value}", "model": "m"}}',
    "environ({{'HOME': '/root', '{name}': '{value}'}})",
    "{name}: '{value}'",
    "HOME=/root\n{name}={value}\nLANG=C.UTF-8",
    "export {name}={value}",
    'declare -x {name}="{value}"',
    "%env {name}={value}",
    "env: {name}={value}",
    "{name}={value} HOME=/root",
]


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("db_password", "letmein"),
        ("PASSWORD", "abc"),
        ("API_TOKEN", "x1"),
        ("SECRET", "hunter2"),
        ("password", "pw"),
        ("WEATHER_KEY", HEX_KEY),
        ("DB_PASSWORD", "correct horse"),
    ],
)
def test_secret_values_are_redacted_in_every_context(context: str, name: str, value: str) -> None:
    text = context.format(name=name, value=value)
    expected = context.format(name=name, value=REDACTED)
    # From the rules alone (a cell the user typed, before any namespace exists) …
    assert redact(text) == expected
    # … and with the values found in the namespace and the environment.
    found = find_secrets([(name.lower(), value)], environ={name: value})
    assert redact(text, found) == expected


@pytest.mark.parametrize("value", ["letmein", "hunter2", "1234", HEX_KEY, "pässwört"])
def test_values_of_four_characters_or_more_are_redacted_wherever_they_appear(value: str) -> None:
    found = find_secrets([("db_password", value)], environ={})
    for text in [
        f"{value}\n",
        f"the password is {value}.",
        f"b'{value}'" if value.isascii() else f"{value.encode()!r}",
        repr([value, "other"]),
        json.dumps({"pw": value}),
        f"https://example.com/login?pw={value}&next=/",
        f"prefix{value}suffix",
    ]:
        assert value not in redact(text, found)
    assert len(value) >= MIN_SECRET_LENGTH


@pytest.mark.parametrize(
    "value", ['it\'s "quoted"', "back\\slash", "tab\tand\nnewline", "pässwört"]
)
def test_values_are_redacted_as_repr_json_and_urls_spell_them(value: str) -> None:
    found = find_secrets([("password", value)], environ={})
    for spelled in [repr(value), json.dumps(value), json.dumps(value, ensure_ascii=False)]:
        redacted = redact(f"x = {spelled}", found)
        assert spelled[1:-1] not in redacted


def test_short_values_are_redacted_only_where_they_stand_whole() -> None:
    found = find_secrets([("password", "pw"), ("PIN", "abc")], environ={"API_TOKEN": "x1"})
    assert found == {"pw", "x1"}  # `PIN` is no secret word
    text = "['admin', 'pw'] and \"x1\"; pwned upward x1y2 matrix_x1"
    assert (
        redact(text, found)
        == f"['admin', '{REDACTED}'] and \"{REDACTED}\"; pwned upward x1y2 matrix_x1"
    )


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
        ("PIN_PASSWORD = 1234", f"PIN_PASSWORD = {REDACTED}"),
        (f"weather_key = '{HEX_KEY}'", f"weather_key = '{REDACTED}'"),
        (f"key={HEX_KEY}", f"key={REDACTED}"),
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
        'key = "id"',
        "primary_key = 'id'",
        "sort_key = 'date'",
        "SORT_KEY = 'date'",
        "sorted(rows, key=len)",
        "for key in d: print(key)",
        "keyboard = 'us'",
        "monkey = 'george'",
        "turkey = 'roast'",
        "tokens = 512",
        "max_tokens = 512",
        '{"max_tokens": 512, "prompt_tokens": 12}',
        "token_count = 3",
        "eos_token = '</s>'",
        "password_file = '/run/secrets/db'",
        "api_key_env = 'OPENAI_API_KEY'",
        "def login(password: str) -> None:",
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
    assert Redactor.of(["abc", " hunter2\n", "hunter2", ""]) is redactor
    assert Redactor.of(["hunter2"]) is not redactor
    assert "hunter2" not in repr(redactor)


@given(
    value=st.text(
        st.characters(codec="ascii", categories=("L", "N")), min_size=MIN_SECRET_LENGTH, max_size=40
    ),
    before=st.text(max_size=40),
    after=st.text(max_size=40),
)
def test_a_known_value_never_survives_redaction(value: str, before: str, after: str) -> None:
    # The marker itself is what redaction writes, so it may contain such a value.
    assume(value not in REDACTED)
    assert value not in redact(before + value + after + value, [value])


@given(
    name=st.sampled_from(SECRET_NAMES),
    value=st.text(st.characters(codec="ascii", categories=("L", "N", "P")), min_size=1),
)
def test_a_value_assigned_to_a_secret_name_never_survives(name: str, value: str) -> None:
    # A value that is part of the name takes that part with it: that is the rule.
    assume("'" not in value and "\\" not in value and value not in name)
    text = f"{name} = '{value}'"
    assert redact(text) == f"{name} = '{REDACTED}'"
    assert redact(text, find_secrets([(name, value)], environ={})) == f"{name} = '{REDACTED}'"


# --- masking, for people -------------------------------------------------------------


def test_mask_hides_known_keys_and_key_shapes_but_keeps_their_kind() -> None:
    text = "got sk-proj-abcdefgh12345 and Bearer abcdef0123456789 for my-key-123456789"
    assert mask(text, ["my-key-123456789"]) == "got sk-*** and Bearer *** for ***"
    assert mask("AKIAIOSFODNN7EXAMPLE") == "***"


def test_mask_url() -> None:
    assert mask_url("http://user:pa55@host:8000/v1") == "http://user:***@host:8000/v1"
    assert mask_url("http://host:8000/v1") == "http://host:8000/v1"
    assert mask_url("postgres://me@db/x") == "postgres://me@db/x"
