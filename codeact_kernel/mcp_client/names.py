"""Python names for what MCP servers call things: servers and tools become attribute
names (`mcp.git.git_log` for server `git`, tool `git-log`), properties parameter names
(`from` becomes `from_`, `repo-path` becomes `repo_path`). Apart from schema.py so that
configuring servers, at kernel start, does not load the schema machinery.
"""

from __future__ import annotations

import keyword
import unicodedata


def parameter_name(name: str, taken: set[str]) -> str:
    """A Python identifier for property `name`, not in `taken` (which it joins)."""
    text = _word(name)
    if not text or not text[0].isidentifier():
        text = "_" + text
    return _unique(text, taken)


def attribute_name(name: str, taken: set[str]) -> str:
    """An attribute name for a server or tool: an identifier not starting with `_`
    (those are left to Python's own protocols: `_repr_html_`, `__wrapped__` …)."""
    text = _word(name).strip("_") or "tool"
    if not text[0].isidentifier():
        text = "t" + text
    return _unique(text, taken)


def _word(name: str) -> str:
    # Python reads identifiers in NFKC form: a name in another form would not match
    # the keyword the user types.
    text = unicodedata.normalize("NFKC", name)
    return "".join(ch if ("a" + ch).isidentifier() else "_" for ch in text)


def _unique(text: str, taken: set[str]) -> str:
    if keyword.iskeyword(text):
        text += "_"
    while text in taken:
        text += "_"
    taken.add(text)
    return text
