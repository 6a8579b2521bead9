"""Editor settings: initializationOptions and the ``spanlens`` configuration section.

Both use the keys of spanlens.toml (``{"lsp": {"diagnostics": "off"}, "backends": [...]}``).
The configuration section wins over initializationOptions, and both over the file. A null
value means "not set here" (VS Code reports unset settings as null).
"""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.lsp.server import LanguageServer

from spanlens_lsp.config import deep_merge

log = logging.getLogger(__name__)

SECTION = "spanlens"


def without_nulls(value: Any) -> Any:
    """``value`` with every null entry of every table removed."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def merge_editor_settings(*layers: Any) -> dict[str, Any]:
    """Deep-merge setting tables, later layers winning; non-tables are ignored."""
    merged: dict[str, Any] = {}
    for layer in layers:
        if isinstance(layer, dict):
            deep_merge(merged, without_nulls(layer))
    return merged


def pushed_section(settings: Any) -> dict[str, Any] | None:
    """The ``spanlens`` table of a didChangeConfiguration push, if the client sent one."""
    if isinstance(settings, dict) and isinstance(settings.get(SECTION), dict):
        return settings[SECTION]
    return None


async def pull_section(server: LanguageServer) -> dict[str, Any] | None:
    """Ask the client for the ``spanlens`` section (only if it supports workspace/configuration)."""
    if not get_capability(server.client_capabilities, "workspace.configuration", False):
        return None
    try:
        result = await server.workspace_configuration_async(
            types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])
        )
    except Exception as exc:
        log.warning("workspace/configuration failed: %s", exc)
        return None
    value = result[0] if result else None
    return value if isinstance(value, dict) else None
