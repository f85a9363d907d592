"""Documentation stays in step with the plugin contract."""

from __future__ import annotations

import inspect
from pathlib import Path

import marathon_core
from marathon_core import hookspecs

DOCS = Path(__file__).parent.parent / "docs"


def hookspec_signatures() -> dict[str, str]:
    """``name(arg, ...)`` of every hookspec, as the docs must show it."""
    signatures = {}
    for name, fn in vars(hookspecs).items():
        if name.startswith("marathon_") and callable(fn):
            args = ", ".join(inspect.signature(fn).parameters)
            signatures[name] = f"{name}({args})"
    return signatures


def test_every_hook_is_documented_with_its_signature() -> None:
    text = (DOCS / "writing_plugins.md").read_text()
    missing = [sig for sig in hookspec_signatures().values() if sig not in text]
    assert missing == []


def test_every_hookspec_has_a_docstring_with_params_and_version() -> None:
    for name, fn in vars(hookspecs).items():
        if name.startswith("marathon_"):
            doc = inspect.getdoc(fn) or ""
            assert ".. versionadded::" in doc, name
            for param in inspect.signature(fn).parameters:
                assert f":param {param}:" in doc, f"{name}: {param} undocumented"


def test_every_plugin_api_module_is_documented() -> None:
    text = (DOCS / "writing_plugins.md").read_text()
    missing = [
        m for m in (*marathon_core.PLUGIN_API, *marathon_core.TESTING_API) if f"`{m}`" not in text
    ]
    assert missing == []


def test_every_containerizer_member_is_documented() -> None:
    """The agent calls each member of the contract: a plugin author must see them all."""
    from marathon_core.contracts.containerizers import Containerizer

    text = (DOCS / "writing_plugins.md").read_text()
    members = [name for name in vars(Containerizer) if not name.startswith("_")]
    assert members == ["launch", "recover", "remove_orphans"]
    assert [m for m in members if f"`{m}`" not in text] == []
