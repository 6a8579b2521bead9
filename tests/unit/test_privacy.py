"""What may reach a remote backend: never ignored files, secret-looking files or credentials."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from spanlens.enrichment.privacy import remote_allowed, text_looks_secret

AWS_KEY = "AKIA" + "ABCDEFGHIJKLMNOP"
PEM = "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----"
GITHUB = "ghp_" + "a" * 36


@pytest.mark.parametrize("secret", [AWS_KEY, PEM, GITHUB, "sk-" + "x" * 40])
def test_credentials_in_the_text_keep_a_file_local(tmp_path: Path, secret: str) -> None:
    text = f'def connect():\n    return client(key="{secret}")\n'
    assert text_looks_secret(text)
    assert not remote_allowed(tmp_path, "app/connect.py", text=text)


def test_ordinary_code_may_go_remote(tmp_path: Path) -> None:
    text = "def add(a, b):\n    'Sum: sk-learn is a library.'\n    return a + b\n"
    assert not text_looks_secret(text)
    assert remote_allowed(tmp_path, "app/math.py", text=text)


def test_ignored_and_secret_named_files_stay_local(tmp_path: Path, write: Callable) -> None:
    write(".gitignore", "local_settings.py\nprivate/\n!private/keep.py\n")
    for path in ("local_settings.py", "config/.env", "deploy/secrets/db.py", "private/keep.py"):
        assert not remote_allowed(tmp_path, path, text="x = 1\n"), path
    assert not remote_allowed(tmp_path, "fixtures/data.py", ["fixtures/"], "x = 1\n")


def test_an_ignore_rule_added_mid_session_applies_at_once(tmp_path: Path, write: Callable) -> None:
    assert remote_allowed(tmp_path, "local_settings.py", text="x = 1\n")
    write(".gitignore", "local_settings.py\n")
    assert not remote_allowed(tmp_path, "local_settings.py", text="x = 1\n")
