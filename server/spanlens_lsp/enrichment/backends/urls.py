"""Endpoint URLs as the user may see them: credentials removed, secrets scrubbed from text."""

from __future__ import annotations

import base64
import re
from urllib.parse import unquote, urlsplit, urlunsplit

from spanlens_lsp.presentation.text import clean_text
from spanlens_lsp.settings import BackendSettings


def display_url(url: str) -> str:
    """``url`` as shown, logged and stored: scheme://hostname:port/path, with any
    ``user:password@`` (and query or fragment) left out."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid url>"
    if not host:
        return url.rsplit("@", 1)[-1] if "@" in url else url
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def display_host(url: str) -> str:
    """hostname:port of ``url`` as :func:`display_url` renders it (for the ``host`` columns)."""
    return urlsplit(display_url(url)).netloc or display_url(url)


def url_without_credentials(url: str) -> str:
    """``url`` as requests go to it: any ``user:password@`` removed, so that httpx never
    turns it into Basic auth (sent in place of the API key, and echoed back by servers)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def url_secrets(url: str) -> list[str]:
    """The credentials embedded in ``url``, in every form a server could echo: as written,
    percent-decoded, and as the base64 of a Basic ``Authorization`` header."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    if "@" not in parts.netloc:
        return []
    userinfo = parts.netloc.rsplit("@", 1)[0]
    user, _, password = userinfo.partition(":")
    found = [userinfo, unquote(userinfo)]
    if password:
        found += [password, unquote(password)]
    for pair in {userinfo, f"{unquote(user)}:{unquote(password)}"}:
        found.append(base64.b64encode(pair.encode("utf-8", "replace")).decode("ascii"))
    return found


def endpoint_secrets(settings: BackendSettings) -> list[str]:
    """Values that must never reach a log, the store or the editor: URL credentials and the
    API key (read from ``api_key_env`` now, as the backend does), also base64-encoded."""
    import os

    secrets = url_secrets(settings.url)
    if settings.api_key_env:
        key = os.environ.get(settings.api_key_env)
        if key:
            secrets += [key, base64.b64encode(key.encode("utf-8", "replace")).decode("ascii")]
    return secrets


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every (non-trivial) secret value replaced by ``***``, and any
    ``Authorization`` header value a server echoed masked whatever it holds.

    Every server-made text (error bodies, exceptions) passes here before it is stored,
    logged or shown, so it also leaves on one line without control or bidi characters.
    """
    text = clean_text(text, one_line=True)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    return _AUTH_VALUE.sub(lambda m: m.group(1) + "***", text)


#: An ``Authorization`` header value as a server may echo it (``authorization: Basic x``,
#: ``Bearer x``): a credential-looking word (a digit, ``+/=``, or a capital past its first
#: letter, so that prose like "Basic authentication" stays) after the scheme.
_AUTH_VALUE = re.compile(
    r"(?i:(\bauthorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?"
    r"|\b(?:bearer|basic)\s+))"
    r"(?!\*\*\*)(?=[A-Za-z0-9._~+/=-]*?(?:[0-9+/=]|(?<=[A-Za-z0-9._~+/=-])[A-Z]))"
    r"[A-Za-z0-9._~+/=-]{3,}"
)
