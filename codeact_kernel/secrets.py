"""Every rule about secrets: what looks like one, and how it is hidden.

Detection
    A *name* looks secret when one of its word parts is a secret word (`api_key`,
    `dbPassword`, `GITHUB_TOKEN`, `accesstoken` …: `looks_secret_name`). Words common
    in ordinary code (`key`, `auth`, `private` …) count only for hiding a value from
    the namespace summary, not for redacting on sight, unless qualified (`api_key`,
    `SECRET_KEY`): that is `strict`.
    A *value* looks like a key when it has a known key shape (`sk-…`, `ghp_…`, a JWT, a
    `Bearer` header, a PEM private key: `KEY_PATTERN`), is a URL with a password
    (`URL_PASSWORD`), or is a long random-looking token (`looks_like_key`).
    The values to redact verbatim from everything the model reads are found by
    `find_secrets`: key-looking strings, and distinctive strings under a strictly
    secret name, in the user's variables (one level down in dicts) and in the
    environment (the kernel's own key lives there).

Hiding
    For the model, `Redactor` replaces with `[redacted]` the values it was built with,
    anything of a key shape, passwords in URLs, PEM private keys, and the literal
    assigned to a strictly secret name (`db_password = "…"`, `"api_key": "…"`,
    `TOKEN=…` in an environment listing).
    For people (error messages, the settings report), `mask` replaces known keys and
    key shapes with `***`, keeping a key's kind (`sk-***`), and `mask_url` masks the
    password of a URL (`http://user:***@host`).

This module imports nothing from the package, so every layer may use it.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "KEY_PATTERN",
    "MASK",
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "URL_PASSWORD",
    "Redactor",
    "find_secrets",
    "looks_like_key",
    "looks_secret_name",
    "mask",
    "mask_url",
    "redact",
]

REDACTED = "[redacted]"
MASK = "***"

# A secret shorter than this is not redacted verbatim everywhere: replacing every
# "abc" in the conversation would mangle it, and such a value is no real secret.
MIN_SECRET_LENGTH = 5
# Secrets are short; a long text merely containing one is redacted by pattern.
_MAX_SECRET_CHARS = 8192
# How far `find_secrets` looks into a dict (`config["api_key"]`).
_MAX_DICT_ITEMS = 200

# --- names ---------------------------------------------------------------------

_SECRET_WORDS = frozenset(
    {
        "key",
        "keys",
        "token",
        "tokens",
        "secret",
        "secrets",
        "password",
        "passwords",
        "passwd",
        "pwd",
        "pw",
        "pass",
        "passphrase",
        "passcode",
        "credential",
        "credentials",
        "cred",
        "creds",
        "auth",
        "authorization",
        "apikey",
        "private",
        "privkey",
        "bearer",
        "jwt",
        "cookie",
        "cookies",
        "dsn",
        "otp",
    }
)
# Words glued together without a separator (`accesstoken`, `clientsecret`).
_SECRET_SUFFIXES = ("token", "tokens", "secret", "password", "passwd", "apikey", "privkey")
# Too common in ordinary data to redact what follows them on sight (an S3 listing's
# `{'Key': 'data/sales.csv'}`, a loop's last `key`, `max_tokens`); the summary still
# hides the value.
_WEAK_SECRET_WORDS = frozenset(
    {"key", "keys", "tokens", "auth", "private", "cookie", "cookies", "otp"}
)
# …unless qualified: `api_key`, `SECRET_KEY`, `access_key`.
_KEY_QUALIFIERS = frozenset(
    {"api", "secret", "access", "private", "auth", "client", "signing", "encryption", "master"}
    | {"license", "app", "service", "ssh", "gpg", "pgp", "session"}
)
_NAME_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
# Environment variables that match the secret words but are not secret.
_PUBLIC_ENVIRONMENT = frozenset({"PWD", "OLDPWD", "SSH_AUTH_SOCK"})


@functools.lru_cache(maxsize=4096)
def looks_secret_name(name: str, *, strict: bool = False) -> bool:
    """Whether a variable name looks like it holds a secret, judged on its word parts.

    `strict` leaves out words that are too common in ordinary code to redact on sight
    (`key`, `auth`, `private` …) unless qualified (`api_key`, `SECRET_KEY`).
    """
    # Cached: the summary and `find_secrets` ask about the same names at every model call.
    words = [part.lower() for part in _NAME_PARTS.findall(name)]
    if not strict:
        return any(_is_secret_word(word) for word in words)
    for word in words:
        if word in _WEAK_SECRET_WORDS:
            if word in ("key", "keys") and _KEY_QUALIFIERS.intersection(words):
                return True
        elif _is_secret_word(word):
            return True
    return False


def _is_secret_word(word: str) -> bool:
    return word in _SECRET_WORDS or word.endswith(_SECRET_SUFFIXES)


# --- values --------------------------------------------------------------------

# Keys with a recognisable shape. Anchored on a non-alphanumeric boundary so that
# ordinary words ("disk-usage-…") do not match.
KEY_PATTERN = re.compile(
    r"""(?<![A-Za-z0-9])(?:
        (?:sk|pk|rk)[-_][A-Za-z0-9_\-]{16,}          # OpenAI, Anthropic, Stripe
      | gh[pousr]_[A-Za-z0-9]{20,}                   # GitHub
      | github_pat_[A-Za-z0-9_]{20,}
      | glpat-[A-Za-z0-9_\-]{20,}                    # GitLab
      | xox[abposr]-[A-Za-z0-9\-]{10,}               # Slack
      | AKIA[0-9A-Z]{16}                             # AWS access key id
      | AIza[0-9A-Za-z_\-]{30,}                      # Google
      | hf_[A-Za-z0-9]{20,}                          # Hugging Face
      | eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}   # JWT
      | Bearer\s+[A-Za-z0-9._~+/\-]{8,}=*              # HTTP Authorization header
      | -----BEGIN[A-Z ]*PRIVATE\ KEY-----
    )""",
    re.VERBOSE,
)
# scheme://user:password@host, the password in the group `password`. Anchored at the
# start of the scheme's run of characters, not at each word boundary inside it, to
# stay linear.
URL_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@]*:(?P<password>[^\s/@]+)@"
)
# What a masked key keeps to say what it was: `sk-`, `ghp_`, `Bearer `.
_KEY_KIND = re.compile(r"[A-Za-z]{1,10}[-_\s]")
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9+/=_\-.]+")
_FILE_SUFFIX = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,4}$")


def looks_like_key(value: str) -> bool:
    """Whether a string looks like a credential: a known key shape, a URL with a
    password, or a long random-looking token."""
    if KEY_PATTERN.search(value) or URL_PASSWORD.search(value):
        return True
    return _looks_random(value)


def _looks_random(value: str) -> bool:
    if len(value) < 20 or not _TOKEN_CHARS.fullmatch(value) or _FILE_SUFFIX.search(value):
        return False
    if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return False
    counts: dict[str, int] = {}
    for char in value:
        counts[char] = counts.get(char, 0) + 1
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    # Random base62 of 20+ characters scores above 4 bits a character; identifiers and
    # words with a year in them ("sales_by_region_2023") score below.
    return entropy >= 3.9


def find_secrets(
    named: Iterable[tuple[str, object]], environ: Mapping[str, str] | None = None
) -> frozenset[str]:
    """String values to redact verbatim from everything sent to the model.

    Among `named` (name, value) pairs, one level down into exact dicts
    (`config["api_key"]`), and the variables of `environ` (default `os.environ`): every
    key-looking string, and every distinctive string under a strictly secret name.
    Only exact `str` and `dict` objects are looked at, so no user code runs.
    """
    environ = os.environ if environ is None else environ
    return frozenset(
        value
        for name, value in _candidates(named, environ)
        if type(value) is str and len(value) <= _MAX_SECRET_CHARS and _is_secret(name, value)
    )


def _candidates(
    named: Iterable[tuple[str, object]], environ: Mapping[str, str]
) -> Iterable[tuple[str, object]]:
    for name, value in named:
        yield name, value
        if type(value) is dict:
            items = itertools.islice(value.items(), _MAX_DICT_ITEMS)
            yield from ((k, v) for k, v in items if type(k) is str)
    yield from ((k, v) for k, v in environ.items() if k not in _PUBLIC_ENVIRONMENT)


@functools.lru_cache(maxsize=4096)
def _is_secret(name: str, value: str) -> bool:
    # Cached: the same variables are judged again at every model call.
    if looks_like_key(value):
        return True
    return looks_secret_name(name, strict=True) and _distinctive(value)


def _distinctive(value: str) -> bool:
    """Whether a value under a secret name is distinctive enough to redact everywhere:
    not a path, and not a short plain word that would also match ordinary text."""
    value = value.strip()
    if len(value) < MIN_SECRET_LENGTH or os.path.isabs(value) or value.startswith("~"):
        return False
    mixed = not (value.isalpha() and (value.islower() or value.isupper()))
    return mixed or len(value) >= 12


# --- redaction, for the model ------------------------------------------------------

_PEM = re.compile(
    r"-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)", re.S
)
# The name is anchored at both ends so that a long word is tried once, not at each of
# its characters (which is quadratic on a 4,000-character observation).
# `name = "…"`, `name: str = "…"`, `["name"] = "…"`, `name="…"` (keyword argument),
# `"name": "…"` (dict, JSON), `NAME=value` (environment listings).
_ASSIGNMENT = re.compile(
    r"""(?<![A-Za-z0-9_])(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?![A-Za-z0-9_])
        (?:['"]?\]?[ \t]*(?::[ \t]*[A-Za-z_][\w.\[\], |]*?[ \t]*)?=(?!=)[ \t]*
          |['"][ \t]*:[ \t]*)
        (?P<value>
            [rRbBuU]{0,2}(?P<literal>
                '''[\s\S]*?''' | \"\"\"[\s\S]*?\"\"\"
              | '(?:[^'\\\n]|\\.)*' | "(?:[^"\\\n]|\\.)*")
          | [^\s'"`,;()\[\]{}]+
        )""",
    re.X,
)
# Unquoted values that are no secret: a variable (`password=pw`) or a number
# (`max_tokens=512`).
_NOT_A_LITERAL = re.compile(r"[A-Za-z_][\w.]*|[-+]?\d[\d_]*(?:\.\d*)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Redactor:
    """Replaces secrets in text with `[redacted]` (see the module docstring).

    Build one per set of secret values with `Redactor.of` and call it on every text:
    building compiles a pattern of all the values, and `of` returns the same redactor
    for the same values, so callers may key caches on it.
    """

    values: frozenset[str] = field(repr=False)
    _verbatim: re.Pattern[str] | None = field(repr=False, compare=False)

    @classmethod
    def of(cls, values: Iterable[str] = ()) -> Redactor:
        """The redactor of `values` (shorter than `MIN_SECRET_LENGTH` are ignored)."""
        return _redactor(frozenset(v for v in values if len(v.strip()) >= MIN_SECRET_LENGTH))

    def __call__(self, text: str) -> str:
        if self._verbatim is not None:
            text = self._verbatim.sub(REDACTED, text)
        text = _PEM.sub(REDACTED, text)
        text = KEY_PATTERN.sub(REDACTED, text)
        text = _mask_passwords(text, REDACTED)
        return _redact_assignments(text)


@functools.lru_cache(maxsize=16)
def _redactor(values: frozenset[str]) -> Redactor:
    # Longest first, so a secret that contains another is replaced whole.
    ordered = sorted(values, key=len, reverse=True)
    pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
    return Redactor(values, pattern)


def redact(text: str, values: Iterable[str] = ()) -> str:
    """`text` with `values` and anything that looks secret replaced by `[redacted]`."""
    return Redactor.of(values)(text)


def _redact_assignments(text: str) -> str:
    pieces: list[str] = []
    done = 0
    start = 0
    while (match := _ASSIGNMENT.search(text, start)) is not None:
        value_start, value_end = match.span("value")
        # A name that is no secret: keep looking inside its value, which may hide one
        # (`note = "password='x'"`).
        start = value_start
        if not looks_secret_name(match.group("name"), strict=True):
            continue
        start = value_end
        literal = match.group("literal")
        if literal is not None:
            quote = 3 if literal[:3] in ("'''", '"""') and len(literal) >= 6 else 1
            body_start, body_end = match.start("literal") + quote, value_end - quote
        elif _NOT_A_LITERAL.fullmatch(match.group("value")):
            continue
        else:
            body_start, body_end = value_start, value_end
        if body_end > body_start:
            pieces.append(text[done:body_start] + REDACTED)
            done = body_end
    pieces.append(text[done:])
    return "".join(pieces)


# --- masking, for people -------------------------------------------------------------


def mask(text: str, known: Iterable[str] = ()) -> str:
    """`text` with the `known` secrets and anything of a key shape replaced by `***`.

    A masked key keeps its kind (`sk-***`, `Bearer ***`), so a message still says what
    was there. Meant for messages people read, such as a server's error that echoes a
    key back.
    """
    for value in known:
        if value:
            text = text.replace(value, MASK)
    return KEY_PATTERN.sub(_mask_key, text)


def _mask_key(match: re.Match[str]) -> str:
    kind = _KEY_KIND.match(match.group(0))
    return (kind.group(0) if kind else "") + MASK


def mask_url(url: str) -> str:
    """`url` with any password in its user-info replaced by `***`."""
    return _mask_passwords(url, MASK)


def _mask_passwords(text: str, replacement: str) -> str:
    return URL_PASSWORD.sub(
        lambda m: m.group(0)[: m.start("password") - m.start(0)] + replacement + "@", text
    )
