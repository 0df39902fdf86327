"""Docs vs code: every setting the server reads (lsp/config.py) is in editors/README.md's table and in the VS
Code extension's package.json, with the same default, and nothing else is."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from lsp.config import Settings

REPO = Path(__file__).resolve().parents[2]
EXTENSION_ONLY = {"serverCommand", "shared"}
"""package.json settings read by the extension itself, never sent to the server."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def code_settings(obj: Any = Settings(), prefix: str = "") -> dict[str, Any]:
    """``{camelCase dotted name: default}`` of the Settings dataclass (nested dataclasses flattened)."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        name = prefix + _camel(field.name)
        if dataclasses.is_dataclass(value):
            out.update(code_settings(value, name + "."))
        else:
            out[name] = value
    return out


def readme_settings() -> dict[str, Any]:
    text = (REPO / "editors" / "README.md").read_text()
    table = text.split("| setting | default | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", table, flags=re.M)
    assert len(rows) == table.count("\n| `"), "every row of the settings table is `name` | `default` | …"
    return {name: json.loads(default) for name, default in rows}


def package_settings() -> dict[str, Any]:
    package = json.loads((REPO / "editors" / "vscode" / "package.json").read_text())
    properties = package["contributes"]["configuration"]["properties"]
    assert all(key.startswith("codeloop.") for key in properties)
    return {key.removeprefix("codeloop."): spec["default"] for key, spec in properties.items()}


def test_readme_table_equals_the_code() -> None:
    assert readme_settings() == code_settings()


def test_package_json_lists_every_server_setting_with_its_default() -> None:
    from_package = package_settings()
    assert EXTENSION_ONLY <= set(from_package)
    assert {k: v for k, v in from_package.items() if k not in EXTENSION_ONLY} == code_settings()


def test_a_drifted_default_is_caught() -> None:
    """The comparison is not vacuous: the code's values are what the server really starts with."""
    settings = code_settings()
    assert settings["maxTokens"] == Settings().max_tokens and settings["security.copyleft"] == "warn"
    assert Settings().merged({"maxTokens": 7}).max_tokens == 7
    assert code_settings(Settings().merged({"maxTokens": 7})) != readme_settings()
