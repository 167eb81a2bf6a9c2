"""Every rule about secrets: what looks like one, and how it is hidden.

Names
    A name is judged on its word parts (`api_key`, `dbPassword`, `GITHUB_TOKEN`,
    `accesstoken` …: `looks_secret_name`), and says one of three things:

    - *secret*: whatever it holds is a secret, whatever the value looks like
      (`password`, `db_pw`, `PASS`, `secret`, `api_token`, `credentials`, `auth`,
      `api_key`, `SECRET_KEY`, and, in capitals as constants and environment
      variables are written, any `*_KEY` that is not a data structure's key:
      `WEATHER_KEY`, but not `SORT_KEY`, and a constant's `*_PAT`: `GITHUB_PAT`);
    - *maybe*: the name holds keys of dicts or tables as often as credentials (`key`,
      `sort_key`, `primary_key`, `weather_key`, `private`, `cookie`): the value is a
      secret when it could be a key (a long token of letters and digits, hex …);
    - *not*: no secret word, or one only named (`max_tokens`, `token_count`,
      `password_file`, `api_key_env`, `is_secret`, `eos_token`, `keyboard`, `monkey`).

Values
    A string is a secret, whatever its name, when it has a known key shape (`sk-…`,
    `ghp_…`, a JWT, a `Bearer` header, a PEM private key: `KEY_PATTERN`), is a URL with
    a password (`URL_PASSWORD`), or is a long random-looking token (`looks_like_key`);
    and under a *secret* name whatever it is, except an absolute path (it says where
    a secret is kept, not what it is). `is_secret_value` decides for one value.
    `find_secrets` collects them from the user's variables, down into dicts, lists,
    tuples and sets, the attributes of plain objects and of classes defined in the
    notebook, and functions' default arguments (an entry with no name of its own, or
    a neutral one, inherits its container's: `creds = ("me", "pw")`), and from the
    environment.

Hiding
    For the model, `Redactor` replaces with `[redacted]`:

    - the secret values it was built with, wherever they appear, when they have at
      least `MIN_SECRET_LENGTH` characters (also as `repr`, JSON and URL escape them);
      shorter ones only where they stand as a whole quoted string (`'pw'`), since
      replacing every "pw" in the conversation would mangle it;
    - anything of a key shape, passwords in URLs, PEM private keys;
    - what is assigned to a *secret* name, in code and in listings: `db_password =
      "…"`, `connect(password="…")`, `"api_key": "…"`, `password: "…"`, `cfg.token =
      "…"`, `TOKEN=…` (an environment line, to its end); under a *maybe* name only a
      value that could be a key. A bare name after `=` in code is a variable, not a
      value (`connect(password=pw)`), except on an environment line.

    For people (error messages, the settings report), `mask` replaces known keys and
    key shapes with `***`, keeping a key's kind (`sk-***`), and `mask_url` masks the
    password of a URL (`http://user:***@host`).

Nothing here runs code of the user's objects: only exact builtin types are read, and
attributes through the instance dict Python keeps for them.

This module imports nothing from the package, so every layer may use it.
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
import math
import os
import re
import types
import urllib.parse
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

__all__ = [
    "KEY_PATTERN",
    "MASK",
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "URL_PASSWORD",
    "Redactor",
    "find_secrets",
    "is_secret_value",
    "looks_like_key",
    "looks_secret_name",
    "mask",
    "mask_url",
    "redact",
]

REDACTED = "[redacted]"
MASK = "***"

# A secret shorter than this is redacted only where it stands as a whole quoted string
# or after its name: replacing every "pw" in the conversation would mangle it, and a
# value that short is guessed in no time anyway.
MIN_SECRET_LENGTH = 4
# Secrets are short; a long text merely containing one is redacted by pattern.
_MAX_SECRET_CHARS = 8192
# How far `find_secrets` looks into containers and objects (`config["db"]["password"]`),
# and how much it reads in all, so that a call costs the same whatever the namespace.
_MAX_DEPTH = 4
_MAX_CHILDREN = 200
_MAX_VISITS = 2000

# --- names ---------------------------------------------------------------------

# Whatever a name made of one of these holds is a secret.
_SECRET_WORDS = frozenset(
    {"token", "secret", "secrets", "password", "passwords", "passwd", "pwd", "passphrase"}
    | {"passcode", "credential", "credentials", "cred", "creds", "apikey", "apikeys"}
    | {"privkey", "bearer", "jwt", "dsn", "auth", "authorization", "otp"}
)
# Secret only as the last word: `db_pass`, `PASS`, `db_pw` (but `pass_through`).
_LAST_WORD_SECRETS = frozenset({"pass", "pw"})
# Words glued together without a separator (`accesstoken`, `clientsecret`).
_SECRET_SUFFIXES = ("token", "secret", "secrets", "password", "passwd", "apikey", "privkey")
_KEY_WORDS = frozenset({"key", "keys"})
# Secret as the last word of a constant of two words or more: `GITHUB_PAT` (a personal
# access token), but not `pat` or `PAT`, which name regular expressions.
_CONSTANT_LAST_WORDS = frozenset({"pat"})
# `EMAIL_PAT`, `DATE_PAT`: what a regular expression matches, before its `PAT`.
_PATTERN_SUBJECTS = frozenset(
    {"email", "emails", "date", "dates", "time", "word", "words", "url", "uri", "num"}
    | {"number", "numbers", "digit", "digits", "phone", "ip", "line", "lines", "name"}
    | {"file", "filename", "path", "space", "whitespace", "float", "int", "integer", "hex"}
    | {"id", "tag", "html", "link", "year", "zip", "code", "version", "ws", "sentence"}
)
# Hold a secret as often as not: the value decides.
_MAYBE_WORDS = frozenset({"private", "cookie", "cookies"})
# `api_key`, `SECRET_KEY`, `access_tokens`, `sessionkey`: a key or tokens of these are
# credentials.
_CREDENTIAL_QUALIFIERS = frozenset(
    {"api", "secret", "access", "private", "auth", "client", "signing", "sign", "master"}
    | {"encryption", "encrypt", "decryption", "license", "licence", "app", "service"}
    | {"ssh", "gpg", "pgp", "session", "consumer", "subscription", "developer", "account"}
    | {"admin", "webhook", "hmac", "crypto", "aes", "rsa", "jwt", "oauth", "refresh"}
    | {"bearer", "deploy", "security", "shared", "storage"}
)
# `sort_key`, `PRIMARY_KEY`: a data structure's key, not a credential.
_DATA_QUALIFIERS = frozenset(
    {"sort", "sorting", "order", "ordering", "primary", "foreign", "unique", "composite"}
    | {"compound", "natural", "surrogate", "candidate", "partition", "range", "hash"}
    | {"shard", "cluster", "clustering", "group", "grouping", "groupby", "join", "merge"}
    | {"match", "lookup", "index", "idx", "row", "column", "col", "field", "dict", "map"}
    | {"mapping", "cache", "memo", "dedup", "object", "s", "bucket", "blob", "file", "item"}
    | {"entry", "node", "edge", "parent", "child", "next", "prev", "previous", "first"}
    | {"last", "current", "cur", "top", "max", "min", "best", "default", "target"}
    | {"source", "src", "dst", "dest", "left", "right", "inner", "outer", "json", "yaml"}
    | {"config", "setting", "settings", "meta", "metadata", "label", "name", "id", "date"}
    | {"time", "timestamp", "category", "type", "kind", "class", "tag", "attr", "param"}
    | {"attribute", "arg", "state", "result", "output", "input", "value", "text", "data"}
    | {"record", "event", "message", "msg", "page", "cell", "redis", "query", "search"}
    | {"filter", "style", "color", "legend", "hue", "level", "dim", "table", "frame"}
    | {"series", "tree", "option", "flag", "property", "prop", "element", "doc"}
    | {"document", "locale", "lang", "language", "sub", "nested", "display", "new", "old"}
)
# `eos_token`, `forward_pass`: ordinary words of tokenizers and algorithms.
_NOT_SECRET_BEFORE = {
    "token": frozenset(
        {"pad", "eos", "bos", "unk", "mask", "cls", "sep", "special", "start", "end", "stop"}
        | {"begin", "sentinel", "added", "next", "prev", "first", "last", "current", "word"}
        | {"sub", "subword", "input", "output", "image", "audio", "text", "vocab", "bpe"}
        | {"char", "this", "each", "new", "sample", "sampled", "predicted", "generated"}
    ),
    "pass": frozenset(
        {"forward", "backward", "first", "second", "third", "last", "final", "single", "one"}
        | {"two", "multi", "next", "prev", "fast", "slow", "full", "dry", "this", "each"}
        | {"render", "training", "train", "eval", "by", "no", "can", "should", "did", "to"}
    ),
}
# A name that only talks about a secret: after the secret word (`token_count`,
# `password_file`, `api_key_env`, `secret_name`) …
_ABOUT_AFTER = frozenset(
    {"count", "counts", "counter", "num", "number", "len", "length", "size", "limit"}
    | {"limits", "max", "min", "total", "id", "ids", "idx", "index", "type", "types"}
    | {"kind", "name", "names", "env", "var", "vars", "variable", "file", "files", "path"}
    | {"paths", "filename", "dir", "url", "urls", "uri", "endpoint", "host", "field"}
    | {"fields", "column", "columns", "col", "prompt", "label", "pattern", "regex", "format"}
    | {"fmt", "policy", "expiry", "expires", "expiration", "ttl", "timeout", "budget"}
    | {"usage", "rate", "prefix", "suffix", "param", "required", "enabled", "disabled"}
    | {"set", "valid", "position", "pos", "start", "end", "offset", "span", "spans"}
    | {"widget", "manager", "provider", "handler", "callback", "fn", "func", "getter"}
    | {"factory", "builder", "class", "cls", "module", "mode", "method", "scheme"}
    | {"strategy", "algorithm", "algo", "version", "dtype", "shape", "dim", "dims"}
    | {"embedding", "embeddings", "vocab", "width", "height", "prob", "probs", "logprob"}
    | {"logprobs", "score", "scores", "loss", "weight", "weights", "sock", "socket"}
    | {"user", "username", "login", "email", "location", "help", "hint"}
)
# … or before it (`max_tokens`, `is_secret`, `HF_HUB_DISABLE_IMPLICIT_TOKEN`).
_ABOUT_BEFORE = frozenset(
    {"is", "has", "have", "use", "uses", "using", "with", "without", "no", "not", "disable"}
    | {"disabled", "enable", "enabled", "allow", "require", "requires", "required", "need"}
    | {"needs", "max", "maximum", "min", "minimum", "num", "n", "nb", "total", "count"}
    | {"len", "show", "hide", "ask", "check", "verify", "validate", "should", "must"}
    | {"can", "skip", "ignore", "expect", "expected", "missing", "invalid", "valid"}
)
_NAME_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
# Environment variables that match the secret words but are not secret.
_PUBLIC_ENVIRONMENT = frozenset({"PWD", "OLDPWD", "SSH_AUTH_SOCK"})

# What a name says (ordered: an entry's own verdict and its container's are combined
# with `max`).
_ABOUT = -1  # mentions a secret but holds none (`token_count`)
_PLAIN = 0
_MAYBE = 1
_SECRET = 2


def looks_secret_name(name: str, *, strict: bool = False) -> bool:
    """Whether a variable name may hold a secret, judged on its word parts.

    `strict`: whether whatever it holds is a secret (`db_password`, `api_token`,
    `WEATHER_KEY`), rather than only a value that could be a key (`key`, `sort_key`).
    """
    return _name_kind(name) >= (_SECRET if strict else _MAYBE)


@functools.lru_cache(maxsize=8192)
def _name_kind(name: str) -> int:
    # Cached: the summary and `find_secrets` ask about the same names at every model call.
    words = [part.lower() for part in _NAME_PARTS.findall(name) if not part.isdigit()]
    kinds = [_word_kind(words, index) for index in range(len(words))]
    last = max((i for i, kind in enumerate(kinds) if kind > _PLAIN), default=None)
    if last is None:
        return _PLAIN
    if _ABOUT_AFTER.intersection(words[last + 1 :]) or _ABOUT_BEFORE.intersection(words[:last]):
        return _ABOUT
    if (
        words[last] in _CONSTANT_LAST_WORDS
        and last == len(words) - 1
        and _is_constant(name)
        and words[last - 1] not in _PATTERN_SUBJECTS
    ):
        return _SECRET
    if words[last] in _KEY_WORDS and kinds[last] == _MAYBE and _is_constant(name):
        before = words[last - 1] if last else None
        if before is not None and before not in _DATA_QUALIFIERS:
            return _SECRET
    return max(kinds)


def _word_kind(words: list[str], index: int) -> int:
    word = words[index]
    before = words[index - 1] if index else None
    if word in _NOT_SECRET_BEFORE and before in _NOT_SECRET_BEFORE[word]:
        return _PLAIN
    if word in _SECRET_WORDS:
        return _SECRET
    if word in _LAST_WORD_SECRETS:
        return _SECRET if index == len(words) - 1 else _PLAIN
    if word in _CONSTANT_LAST_WORDS:
        return _MAYBE if index == len(words) - 1 and index else _PLAIN
    if word in _KEY_WORDS:
        return _SECRET if before in _CREDENTIAL_QUALIFIERS else _MAYBE
    if word == "tokens":
        return _SECRET if before in _CREDENTIAL_QUALIFIERS else _PLAIN
    if word in _MAYBE_WORDS:
        return _MAYBE
    if word.endswith(_SECRET_SUFFIXES):
        return _SECRET
    for suffix in ("key", "keys"):
        if word.endswith(suffix) and word[: -len(suffix)] in _CREDENTIAL_QUALIFIERS:
            return _SECRET
    return _PLAIN


def _is_constant(name: str) -> bool:
    """Written in capitals, as constants and environment variables are."""
    return name.upper() == name and any(char.isalpha() for char in name)


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
_HEX = re.compile(r"[0-9a-fA-F]+")
_ALNUM = re.compile(r"[A-Za-z0-9]+")


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


def _could_be_key(value: str) -> bool:
    """Whether a value under a name that only sometimes holds a key (`key`, `sort_key`)
    is one: a key shape, or 16+ characters of letters and digits that are hex, mix
    cases, or run together without separators (column names and paths do not)."""
    if looks_like_key(value):
        return True
    if len(value) < 16 or not _TOKEN_CHARS.fullmatch(value) or _FILE_SUFFIX.search(value):
        return False
    digits = sum(char.isdigit() for char in value)
    if not digits or digits == len(value) or not any(char.isalpha() for char in value):
        return False
    if _HEX.fullmatch(value) or (not value.islower() and not value.isupper()):
        return True
    return bool(_ALNUM.fullmatch(value)) and len(value) >= 20 and digits >= 4


def is_secret_value(name: str, value: str) -> bool:
    """Whether `value`, held under `name`, is a secret (see the module docstring)."""
    return _is_secret(_name_kind(name), value)


@functools.lru_cache(maxsize=8192)
def _is_secret(kind: int, value: str) -> bool:
    # Cached: the same variables are judged again at every model call.
    value = value.strip()
    if not value or len(value) > _MAX_SECRET_CHARS:
        return False
    if kind == _SECRET:
        return not (os.path.isabs(value) or value.startswith("~"))
    if kind == _MAYBE:
        return _could_be_key(value)
    return looks_like_key(value)


def find_secrets(
    named: Iterable[tuple[str, object]], environ: Mapping[str, str] | None = None
) -> frozenset[str]:
    """The secret strings among `named` (name, value) pairs and the variables of
    `environ` (default `os.environ`), stripped: what a `Redactor` is built from.

    Looks into exact dicts, lists, tuples and sets, the attributes of plain objects
    (`cfg.password`) and of classes defined in the notebook, and the default arguments
    of functions, within a fixed budget; an entry named by a key, attribute or
    parameter is judged by that name, or by its container's when its own says nothing.
    Runs no code of the user's objects.
    """
    environ = os.environ if environ is None else environ
    found: set[str] = set()
    walk = _Walk(found)
    for name, value in named:
        walk.visit(_name_kind(name) if type(name) is str else _PLAIN, value, 0)
    walk.run()
    for name, value in environ.items():
        if name not in _PUBLIC_ENVIRONMENT and type(value) is str:
            walk.visit(_name_kind(name), value, 0)
    return frozenset(found)


class _Walk:
    """A breadth-first look into containers: every top-level value is judged before any
    container is opened, and those under a secret-looking name are opened first, so the
    budget goes to what most likely holds secrets."""

    def __init__(self, found: set[str]) -> None:
        self.found = found
        self.queue: collections.deque[tuple[int, object, int]] = collections.deque()
        self.visits = 0

    def visit(self, kind: int, value: object, depth: int) -> None:
        kind = max(kind, _PLAIN)
        if type(value) is str:
            if _is_secret(kind, value):
                self.found.add(value.strip())
        elif type(value) is bytes:
            text = _decoded(value)
            if text is not None and _is_secret(kind, text):
                self.found.add(text.strip())
        elif depth < _MAX_DEPTH and type(value) not in _LEAVES:
            # Containers under a secret-looking name are opened first.
            if kind > _PLAIN:
                self.queue.appendleft((kind, value, depth + 1))
            else:
                self.queue.append((kind, value, depth + 1))

    def run(self) -> None:
        while self.queue and self.visits < _MAX_VISITS:
            kind, value, depth = self.queue.popleft()
            children = itertools.islice(_children(kind, value), _MAX_CHILDREN)
            try:
                for child_kind, child in children:
                    self.visits += 1
                    self.visit(child_kind, child, depth)
            except RuntimeError:
                # Changed by one of the user's threads while we read it: what was read
                # counts, the rest is judged at the next call.
                continue


def _decoded(value: bytes) -> str | None:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return None


_SEQUENCES = (list, tuple, set, frozenset)
# Nothing inside: not worth a place in the queue.
_LEAVES = (int, float, complex, bool, type(None))


def _children(kind: int, value: object) -> Iterable[tuple[int, object]]:
    """The entries of a container, each with the kind of name it is found under."""
    if type(value) in _SEQUENCES:
        # Exact builtin containers: iterating them runs no user code.
        return ((kind, item) for item in value)  # type: ignore[attr-defined]
    entries = _named_entries(value)
    if entries is None:
        return ()
    if type(value) in (types.FunctionType, functools.partial):
        # Parameters speak for themselves: `get_token(url=…)` holds no token in `url`.
        kind = _PLAIN
    return (
        (_entry_kind(kind, key) if type(key) is str else kind, item)
        for key, item in entries.items()
    )


def _entry_kind(container: int, name: str) -> int:
    own = _name_kind(name)
    if own == _ABOUT:
        return _ABOUT
    return max(own, container)


def _named_entries(value: object) -> Mapping[Any, object] | None:
    """Name → value pairs inside `value`: a dict's items, a plain object's attributes,
    a notebook class's attributes, a function's or partial's default arguments."""
    kind = type(value)
    if kind is dict:
        return value  # type: ignore[return-value]
    if kind is types.FunctionType:
        return _defaults(value)  # type: ignore[arg-type]
    if kind is functools.partial:
        keywords = value.keywords  # type: ignore[attr-defined]
        return keywords if type(keywords) is dict else None
    if issubclass(kind, type):
        namespace = type.__dict__["__dict__"].__get__(value)
        # Only classes defined in the notebook: a library's hold no secrets of the user.
        return namespace if namespace.get("__module__") == "__main__" else None
    return _instance_dict(value)


def _defaults(function: types.FunctionType) -> dict[str, object]:
    # Attributes of an exact function are the interpreter's, never the user's code.
    code = function.__code__
    positional = code.co_varnames[: code.co_argcount]
    defaults = function.__defaults__ or ()
    # Defaults belong to the last positional parameters.
    named: dict[str, object] = dict(zip(reversed(positional), reversed(defaults), strict=False))
    named.update(function.__kwdefaults__ or {})
    return named


def _instance_dict(value: object) -> dict[str, object] | None:
    """A plain object's own attributes (`cfg.password`), read without running its code:
    only through the `__dict__` slot Python made for its class, never a property or
    `__getattr__` of the class."""
    kind = type(value)
    if issubclass(kind, (types.ModuleType, types.MethodType, types.BuiltinFunctionType)):
        return None
    for klass in type.__dict__["__mro__"].__get__(kind):
        namespace = type.__dict__["__dict__"].__get__(klass)
        if "__dict__" in namespace:
            if type(namespace["__dict__"]) is not types.GetSetDescriptorType:
                return None
            attributes = object.__getattribute__(value, "__dict__")
            return attributes if type(attributes) is dict else None
    return None


# --- redaction, for the model ------------------------------------------------------

_PEM = re.compile(
    r"-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)", re.S
)
# What names a value: `name = `, `name: str = `, `["name"] = `, `name=` (keyword
# argument), `"name": ` (dict, JSON), `name: ` before a quote (YAML), `NAME=`
# (environment listings). The name is anchored at both ends so that a long word is tried
# once, not at each of its characters; the value is matched apart (`_VALUE`), only after
# a secret name, so that a long value is not read again after each name in it
# (`a=a=a=…` would be quadratic).
_NAMED = re.compile(
    r"""(?<![A-Za-z0-9_])(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?![A-Za-z0-9_])
        (?P<op>['"]?\]?[ \t]*(?::[ \t]*[A-Za-z_][\w.\[\], |]*?[ \t]*)?=(?!=)[ \t]*
          |['"][ \t]*:[ \t]*
          |[ \t]*:[ \t]*(?=[rRbBuU]{0,2}['"]))""",
    re.X,
)
# A string literal, its body no longer than a secret is (`_MAX_SECRET_CHARS`, so that an
# unclosed quote costs a bounded look ahead), or a bare value.
_VALUE = re.compile(
    r"""[rRbBuU]{0,2}(?P<literal>
            '''[\s\S]{0,8192}?''' | \"\"\"[\s\S]{0,8192}?\"\"\"
          | '(?:[^'\\\n]|\\.){0,8192}' | "(?:[^"\\\n]|\\.){0,8192}")
      | [^\s'"`,;()\[\]{}]+""",
    re.X,
)
# A bare value that is a variable in code (`password=pw`) or an object's placeholder
# (`password=<str>`, as the namespace summary writes a hidden default), not a secret.
_NOT_A_VALUE = re.compile(r"[A-Za-z_][\w.]*|<[\w.]+>")
_NEXT_ASSIGNMENT = re.compile(r"[ \t]+[A-Za-z_][A-Za-z0-9_]*=")
# What may open a line before `NAME=value` that sets or lists a variable: `env` lists
# none, `export`, `declare -x` (bash), `%env`/`%set_env` and what they print (`env: `).
_ENV_LINE_PREFIX = re.compile(
    r"[ \t]*(?:(?:export|declare[ \t]+-x|set|setenv|env:|!export|%env|%set_env)[ \t]+)?"
)


@dataclass(frozen=True)
class Redactor:
    """Replaces secrets in text with `[redacted]` (see the module docstring).

    Build one per set of secret values with `Redactor.of` and call it on every text:
    building compiles a pattern of all the values, and `of` returns the same redactor
    for the same values, so callers may key caches on it.
    """

    values: frozenset[str] = field(repr=False)
    _verbatim: re.Pattern[str] | None = field(repr=False, compare=False)
    _quoted: re.Pattern[str] | None = field(repr=False, compare=False)

    @classmethod
    def of(cls, values: Iterable[str] = ()) -> Redactor:
        """The redactor of `values`, stripped (blank ones are ignored)."""
        return _redactor(frozenset(stripped for value in values if (stripped := value.strip())))

    def __call__(self, text: str) -> str:
        if self._verbatim is not None:
            text = self._verbatim.sub(REDACTED, text)
        text = _PEM.sub(REDACTED, text)
        text = KEY_PATTERN.sub(REDACTED, text)
        text = _mask_passwords(text, REDACTED)
        text = _redact_assignments(text)
        if self._quoted is not None:
            text = self._quoted.sub(rf"\g<quote>{REDACTED}\g<quote>", text)
        return text


@functools.lru_cache(maxsize=16)
def _redactor(values: frozenset[str]) -> Redactor:
    long = {value for value in values if len(value) >= MIN_SECRET_LENGTH}
    spelled = {spelling for value in long for spelling in _spellings(value)}
    short = values - long
    verbatim = quoted = None
    if spelled:
        verbatim = re.compile(_alternatives(spelled))
    if short:
        quoted = re.compile(rf"(?P<quote>['\"])(?:{_alternatives(short)})(?P=quote)")
    return Redactor(values, verbatim, quoted)


_Trie: TypeAlias = "dict[str, _Trie]"


def _alternatives(strings: Iterable[str]) -> str:
    """A pattern matching any of `strings`, the longest where several match (a secret
    that contains another is replaced whole).

    Written as a trie (`ab(?:c|d)`, not `abc|abd`), so that each position of a text is
    tried against each next character once, not against every string in turn.
    """
    trie: _Trie = {}
    for string in strings:
        node = trie
        for char in string:
            node = node.setdefault(char, {})
        node[""] = {}
    return _trie_pattern(trie)


def _trie_pattern(node: _Trie) -> str:
    branches = [re.escape(char) + _trie_pattern(child) for char, child in node.items() if char]
    if not branches:
        return ""
    # An end here is tried last, so the longer strings win.
    ends = "" in node
    if len(branches) == 1 and not ends:
        return branches[0]
    return "(?:" + "|".join(branches) + ("|" if ends else "") + ")"


def _spellings(value: str) -> set[str]:
    """`value` as printed directly and as `repr`, JSON and URLs escape it."""
    spellings = {
        value,
        repr(value)[1:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        urllib.parse.quote(value, safe=""),
        repr(value.encode(errors="surrogateescape"))[2:-1],
    }
    return {spelling for spelling in spellings if len(spelling) >= MIN_SECRET_LENGTH}


def redact(text: str, values: Iterable[str] = ()) -> str:
    """`text` with `values` and anything that looks secret replaced by `[redacted]`."""
    return Redactor.of(values)(text)


def _redact_assignments(text: str) -> str:
    pieces: list[str] = []
    done = 0
    start = 0
    while (named := _NAMED.search(text, start)) is not None:
        # Whatever the name, keep looking right after it: in what looked like an
        # annotation (`env: PASSWORD=x`) and in its value (`note = "password='x'"`).
        start = named.end("name")
        kind = _name_kind(named.group("name"))
        value = _VALUE.match(text, named.end()) if kind >= _MAYBE else None
        if value is None:
            continue
        value_start, value_end = value.span()
        start = value_end
        literal = value.group("literal")
        if literal is not None:
            quote = 3 if literal[:3] in ("'''", '"""') and len(literal) >= 6 else 1
            body_start, body_end = value.start("literal") + quote, value_end - quote
        elif _starts_environment_line(text, named):
            body_start, body_end = value_start, _environment_value_end(text, value_start)
            start = body_end
        elif _NOT_A_VALUE.fullmatch(value.group()):
            continue
        else:
            body_start, body_end = value_start, value_end
        body = text[body_start:body_end]
        if body_end > body_start and (kind == _SECRET or _could_be_key(body.strip())):
            pieces.append(text[done:body_start] + REDACTED)
            done = body_end
    pieces.append(text[done:])
    return "".join(pieces)


def _environment_value_end(text: str, start: int) -> int:
    """Where an unquoted environment value ends: `env` quotes nothing, so at the end of
    its line, or before the next `NAME=` on it (`A_TOKEN=x B=y`)."""
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    following = _NEXT_ASSIGNMENT.search(text, start, line_end)
    end = following.start() if following is not None else line_end
    return start + len(text[start:end].rstrip())


def _starts_environment_line(text: str, match: re.Match[str]) -> bool:
    """`NAME=value` at the start of a line, as `env` and `export` list variables."""
    if match.group("op") != "=":
        return False
    line_start = text.rfind("\n", 0, match.start()) + 1
    return _ENV_LINE_PREFIX.fullmatch(text, line_start, match.start()) is not None


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


# How much of a known secret a key-shaped string must hold to be masked as part of it.
_PART_OF_SECRET = 12


def mask_shown(text: str, known: Collection[str]) -> str:
    """`text` as an action may show it to the user: the `known` secrets masked, and a
    key-shaped string that holds part of one (the key printed without its last
    character). Other key-shaped strings are the user's data (a column named
    `sk_product_surrogate_key`), shown as they are; what goes to the model is redacted
    by shape as well (`redact`)."""
    for value in known:
        if value:
            text = text.replace(value, MASK)
    if not known:
        return text

    def masked(match: re.Match[str]) -> str:
        found = match.group(0)
        windows = [found[i : i + _PART_OF_SECRET] for i in range(len(found) - _PART_OF_SECRET + 1)]
        if any(window in value for window in windows for value in known):
            return _mask_key(match)
        return found

    return KEY_PATTERN.sub(masked, text)


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
