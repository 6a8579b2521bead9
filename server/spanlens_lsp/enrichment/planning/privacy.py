"""Which files must never reach a remote backend: ignored files and files that look secret."""

from __future__ import annotations

import atexit
import contextlib
import fnmatch
import hashlib
import math
import os
import re
import shutil
import tempfile
import threading
from collections import Counter
from pathlib import Path, PurePosixPath

from spanlens_lsp.indexing.walk import skip_reason

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


#: detect-secrets plugins run on prompt text: every one it ships except the hex-entropy check
#: (it flags every SHA in a test) and public IP addresses (not credentials).
DETECTOR_PLUGINS = (
    "ArtifactoryDetector",
    "AWSKeyDetector",
    "AzureStorageKeyDetector",
    "BasicAuthDetector",
    "CloudantDetector",
    "DiscordBotTokenDetector",
    "GitHubTokenDetector",
    "GitLabTokenDetector",
    "Base64HighEntropyString",
    "IbmCloudIamDetector",
    "IbmCosHmacDetector",
    "JwtTokenDetector",
    "KeywordDetector",
    "MailchimpDetector",
    "NpmDetector",
    "OpenAIDetector",
    "PrivateKeyDetector",
    "PypiTokenDetector",
    "SendGridDetector",
    "SlackDetector",
    "SoftlayerDetector",
    "SquareOAuthDetector",
    "StripeDetector",
    "TelegramBotTokenDetector",
    "TwilioKeyDetector",
)

#: Credentials detect-secrets 1.5 misses, recognisable by their shape wherever they sit.
OWN_SECRET_TEXT = re.compile(
    r"\bsk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{20,}"  # OpenAI (new forms) / Anthropic keys
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|\bhf_[A-Za-z0-9]{30,}"  # Hugging Face tokens
    r"|\bgithub_pat_[A-Za-z0-9_]{40,}"  # GitHub fine-grained tokens
    r"|\b[a-z][a-z0-9+.-]*://[^/\s:@\"'`]+:[^/\s@\"'`]+@"  # user:password@ in any URL
    # Go's secret = []byte("..."), which its keyword check does not read as an assignment
    r"|(?i:secret|passw(?:or)?d|token|api_?key|signing_?key)\w*\s*:?=\s*\[\]byte\(\s*\"[^\"]{6,}\""
)
#: A 40-character base64 word: the shape of an AWS secret access key, quoted or not.
_AWS_SECRET_SHAPE = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")

#: Lines any detect-secrets plugin above could flag have one of these: a word of its keyword
#: list, a URL's ``://``, a PEM header, or a long token (every token shape it knows and its
#: entropy check need 16+ characters). Other lines are not handed to it (most of its cost
#: is a fixed price per line and plugin).
_CANDIDATE_LINE = re.compile(
    r"(?i:key|secret|pass|pwd|token|auth|cred|contras|private)|://|BEGIN"
    r"|[^\s\"'`()\[\]{},;]{16,}"
)

#: A file extension safe to give the scanner's temporary file.
_SUFFIX = re.compile(r"\.[A-Za-z0-9_+-]{1,16}")

_detector_lock = threading.Lock()
_detector_ready = False


def text_looks_secret(text: str, path: str = "span.py") -> bool:
    """Whether ``text`` (from a file named like ``path``) holds something shaped like a
    credential: detect-secrets' plugins (keyword and entropy checks included), then the
    shapes it misses. Verdicts are remembered by the text's hash (a span retried or
    re-queued is not scanned again)."""
    name = PurePosixPath(path).name or "span.py"
    key = (hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=16).digest(), name)
    verdict = _verdicts.get(key)
    if verdict is None:
        verdict = bool(
            OWN_SECRET_TEXT.search(text)
            or any(_random_enough(m.group()) for m in _AWS_SECRET_SHAPE.finditer(text))
            or _detect_secrets_finds(text, name)
        )
        if len(_verdicts) >= _VERDICTS_MAX:
            _verdicts.clear()
        _verdicts[key] = verdict
    return verdict


_verdicts: dict[tuple[bytes, str], bool] = {}
_VERDICTS_MAX = 16384


def _random_enough(word: str) -> bool:
    """Mixed case and digits at detect-secrets' base64 entropy limit (4.5 bits a char)."""
    if not (any(c.isupper() for c in word) and any(c.islower() for c in word)):
        return False
    if not any(c.isdigit() for c in word):
        return False
    counts = Counter(word)
    entropy = -sum(n / len(word) * math.log2(n / len(word)) for n in counts.values())
    return entropy >= 4.5


def names_a_variable(secret: str) -> bool:
    """detect-secrets filter: ``api_key_env = "OPENAI_API_KEY"`` names where a key is, it
    is not one (an upper-case identifier with an underscore)."""
    return re.fullmatch(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+", secret) is not None


def _detect_secrets_finds(text: str, filename: str) -> bool:
    """Whether any detect-secrets plugin (through its default filters) flags a line.

    Through its public file scanner: the candidate lines go to a file with the extension of
    ``filename`` (its plugins read the file type from it) in a private temporary folder,
    deleted at once.
    """
    _configure_detect_secrets()
    from detect_secrets.core.scan import scan_file

    candidates = [line for line in text.splitlines() if _CANDIDATE_LINE.search(line)]
    if not candidates:
        return False
    suffix = os.path.splitext(filename)[1]
    name = f"span-{threading.get_ident()}{suffix if _SUFFIX.fullmatch(suffix) else ''}"
    path = os.path.join(_scan_folder(), name)
    try:
        # The encoding detect-secrets opens it with (open() without one).
        with open(path, "w", encoding="locale", errors="replace") as file:
            file.write("\n".join(candidates) + "\n")
        return next(iter(scan_file(path)), None) is not None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _scan_folder() -> str:
    """The process's private temporary folder for :func:`_detect_secrets_finds` (one file per
    thread, deleted after each scan), removed at exit; removing a folder per scan cost more
    than the scan."""
    global _scan_folder_path
    with _detector_lock:
        if _scan_folder_path is None or not os.path.isdir(_scan_folder_path):
            _scan_folder_path = tempfile.mkdtemp(prefix="spanlens-scan-")
            atexit.register(shutil.rmtree, _scan_folder_path, ignore_errors=True)
        return _scan_folder_path


_scan_folder_path: str | None = None


def _configure_detect_secrets() -> None:
    """Process-wide settings of detect-secrets, once (nothing else here uses it): the plugins
    above, its default filters and :func:`names_a_variable`."""
    global _detector_ready
    if _detector_ready:
        return
    from detect_secrets.settings import cache_bust, configure_settings_from_baseline, get_filters

    with _detector_lock:
        if not _detector_ready:
            cache_bust()  # settings afresh, with the default filters
            settings = configure_settings_from_baseline(
                {"plugins_used": [{"name": name} for name in DETECTOR_PLUGINS]}
            )
            settings.filters[f"{__name__}.names_a_variable"] = {}
            get_filters.cache_clear()
            _detector_ready = True


def looks_secret(path: str) -> bool:
    """Whether a workspace-relative path looks like it holds secrets, in any letter case
    (``.ENV``, ``Secrets/``, ``ID_RSA``), with ``/`` or ``\\`` between folders."""
    parts = [part.lower() for part in re.split(r"[\\/]", path) if part not in ("", ".")]
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
    at every level, parsed again only when one changes; ``exclude``; default and
    virtual-environment folders), or when ``text`` holds something shaped like a credential.
    """
    if looks_secret(path) or skip_reason(root, path, exclude, max_size=1 << 62) is not None:
        return False
    return text is None or not text_looks_secret(text, path)
