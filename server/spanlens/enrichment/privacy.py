"""Which files must never reach a remote backend: ignored files and files that look secret."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path, PurePosixPath

from spanlens.indexing.walk import skip_reason

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


def remote_allowed(
    root: Path, path: str, exclude: list[str] | None = None, text: str | None = None
) -> bool:
    """Whether spans of ``path`` (whose current text is ``text``) may go to a remote backend.

    Not when the path looks secret, when the workspace walk would not index it (ignore files
    read afresh at every level, ``exclude``, default and virtual-environment folders), or when
    ``text`` holds something shaped like a credential.
    """
    if looks_secret(path) or skip_reason(root, path, exclude, max_size=1 << 62) is not None:
        return False
    return text is None or not text_looks_secret(text)
