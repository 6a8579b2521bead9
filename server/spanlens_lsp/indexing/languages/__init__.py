"""Language extractors: one module per language, each implementing :class:`Extractor`.

Modules are imported lazily, so indexing a Python-only tree never loads the Rust grammar.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Container
from typing import Protocol

from spanlens_lsp.indexing.spans import Extraction, ParsedSource

#: File extension -> language name.
LANGUAGE_BY_EXTENSION: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
}

#: Language name -> module under spanlens_lsp.indexing.languages that provides ``create(language)``.
_MODULE_BY_LANGUAGE = {
    "python": "python",
    "javascript": "javascript",
    "typescript": "typescript",
    "tsx": "typescript",
    "go": "go",
    "rust": "rust",
    "java": "java",
}

LANGUAGES = tuple(_MODULE_BY_LANGUAGE)

#: Editor language ids (VS Code's; Neovim's filetypes are the same) of the extensions whose id
#: is not the language name above: React's JSX and TSX files.
EDITOR_LANGUAGE_BY_EXTENSION = {".jsx": "javascriptreact", ".tsx": "typescriptreact"}


def editor_languages() -> tuple[str, ...]:
    """The editor language ids of every file spanlens indexes, in the table's order.

    This table is the one list of languages: the VS Code extension (``servers.ts``,
    ``package.json``) and the Neovim plugin start the server for exactly these ids, and
    ``tests/unit/test_client_languages.py`` fails when one of them does not.
    """
    ids = (
        EDITOR_LANGUAGE_BY_EXTENSION.get(ext, name) for ext, name in LANGUAGE_BY_EXTENSION.items()
    )
    return tuple(dict.fromkeys(ids))


class Extractor(Protocol):
    """Turns one file's bytes into spans with facts."""

    language: str

    def extract(
        self,
        source: bytes,
        previous: ParsedSource | None = None,
        known_hashes: Container[str] = frozenset(),
    ) -> Extraction:
        """Parse ``source`` and return its spans (those that parse, on syntax errors).

        ``previous`` is an earlier parse of the same file (``Extraction.parsed``), which this
        consumes: only what changed since is re-parsed. The result is the same either way.
        A span whose hash is in ``known_hashes`` may come without facts (None): the caller
        holds that hash's facts already, and building them is most of a span's cost.
        """
        ...


_extractors: dict[str, Extractor] = {}


def language_for_path(path: str) -> str | None:
    """The language of a file by its extension, or None when spanlens does not index it."""
    return LANGUAGE_BY_EXTENSION.get(os.path.splitext(path)[1].lower())


def get_extractor(language: str) -> Extractor:
    """The (cached, per-process) extractor for ``language``."""
    extractor = _extractors.get(language)
    if extractor is None:
        module = importlib.import_module(f"{__name__}.{_MODULE_BY_LANGUAGE[language]}")
        extractor = module.create(language)
        _extractors[language] = extractor
    return extractor
