"""Which files must never reach a remote backend: ignored files and files that look secret."""

from __future__ import annotations

import fnmatch
import re
from functools import lru_cache
from pathlib import Path, PurePosixPath

import pathspec

from spanlens.indexing.walk import DEFAULT_IGNORED_DIRS, IGNORE_FILES

#: File name patterns (lower-cased) of secrets, keys and credentials.
SECRET_NAME_PATTERNS = (
    ".env",
    ".env.*",
    "*.env",
    "*secret*",
    "*credential*",
    "*password*",
    "*passwd*",
    "*private_key*",
    "*privatekey*",
    "*apikey*",
    "*api_key*",
    "*.token",
    "*auth_token*",
    "id_rsa*",
    "id_ed25519*",
    "id_ecdsa*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.keystore",
    "*.jks",
    ".netrc",
    ".npmrc",
    ".pypirc",
)
#: Folder names (lower-cased) whose contents count as secret.
SECRET_DIRS = frozenset({".ssh", ".gnupg", ".aws", "secrets", "secret", "credentials", "keys"})


#: Credentials recognisable by their shape, wherever they sit in a file.
SECRET_TEXT = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"  # PEM private keys
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids
    r"|\bgh[pousr]_[A-Za-z0-9]{36,}"  # GitHub tokens
    r"|\bgithub_pat_[A-Za-z0-9_]{40,}"
    r"|\bglpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"  # OpenAI / Anthropic style API keys
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API keys
)


def text_looks_secret(text: str) -> bool:
    """Whether ``text`` contains something shaped like a private key or API token."""
    return SECRET_TEXT.search(text) is not None


def looks_secret(path: str) -> bool:
    """Whether a workspace-relative path looks like it holds secrets."""
    parts = [part.lower() for part in PurePosixPath(path).parts]
    if not parts:
        return False
    if any(part in SECRET_DIRS for part in parts[:-1]):
        return True
    name = parts[-1]
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in SECRET_NAME_PATTERNS)


class IgnoreRules:
    """Answers "is this path ignored?" with .gitignore/.spanlensignore along its folders."""

    def __init__(self, root: Path, exclude: list[str] | None = None) -> None:
        self.root = root
        self._exclude = pathspec.GitIgnoreSpec.from_lines(exclude or [])

    def is_ignored(self, path: str) -> bool:
        """Gitignore semantics: the deepest matching rule decides; default folders always."""
        parts = PurePosixPath(path).parts
        if any(part in DEFAULT_IGNORED_DIRS for part in parts[:-1]):
            return True
        ignored = bool(self._exclude.match_file(path))
        for depth in range(len(parts)):
            base = "/".join(parts[:depth])
            spec = self._spec(base)
            if spec is None:
                continue
            result = spec.check_file("/".join(parts[depth:]))
            if result.include is not None:
                ignored = bool(result.include)
        return ignored

    @lru_cache(maxsize=512)  # noqa: B019 - one instance per engine; bounded
    def _spec(self, base: str) -> pathspec.PathSpec | None:
        lines: list[str] = []
        for name in IGNORE_FILES:
            file = self.root / base / name if base else self.root / name
            try:
                lines += file.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
        return pathspec.GitIgnoreSpec.from_lines(lines) if lines else None


def remote_allowed(path: str, rules: IgnoreRules, text: str | None = None) -> bool:
    """Whether spans of ``path`` (whose current text is ``text``) may go to a remote backend."""
    if looks_secret(path) or rules.is_ignored(path):
        return False
    return text is None or not text_looks_secret(text)
