"""What may reach a remote backend: never ignored files, secret-looking files or credentials."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.replies import parse_request, valid_responder
from tests.support.standin import StandinModelServer
from tests.unit.test_enrichment_engine import backend, make_settings, spans_named, workspace

from spanlens_lsp.app import open_engine
from spanlens_lsp.enrichment.planning import privacy
from spanlens_lsp.enrichment.planning.privacy import remote_allowed, text_looks_secret

# Built from parts so that no scanner of this repository mistakes the test for a leak.
AWS_KEY = "AKIA" + "ABCDEFGHIJKLMNOP"
AWS_SECRET = "Zx9vQ2mL7pR4tY8wK3nB6cF1" + "hJ5dS0aG/eU+iO7q"
PEM = "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
STRIPE = "sk_" + "live_51H8xKqLzYp3Wm2Nc7Rv9Tb4"
HF = "hf_" + "QmVbTzLwKpRnXsYdCfGhJkMqWeRtYuIoPa"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    + "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)

#: Credential shapes, each as code would hold it (name -> (path, text)).
CREDENTIALS = {
    "aws secret key, quoted, no key id near": ("aws.py", f'aws_secret = "{AWS_SECRET}"\n'),
    "aws secret key, bland name": ("aws.py", f'creds = ("{AWS_SECRET}",)\n'),
    "aws secret key in a shell line": ("env.py", f"# export AWS_SECRET_ACCESS_KEY={AWS_SECRET}\n"),
    "aws access key id": ("aws.py", f'key_id = "{AWS_KEY}"\n'),
    "stripe live key": ("pay.py", f'stripe.api_key = "{STRIPE}"\n'),
    "stripe restricted key": ("pay.py", f'KEY = "r{STRIPE[1:]}"\n'),
    "database url with password": (
        "db.py",
        'DATABASE_URL = "postgres://app:Pa55w0rd@db.internal:5432/app"\n',
    ),
    "short database password": ("db.py", 'create_engine("postgresql+psycopg2://u:pw@host/db")\n'),
    "database url in js": ("db.js", "const url = `mysql://root:toor@127.0.0.1/app`;\n"),
    "hugging face token": ("hub.py", f'HF_TOKEN = "{HF}"\n'),
    "hugging face token, bare": ("hub.py", f"# login with {HF}\n"),
    "jwt signing secret": ("auth.py", 'JWT_SECRET = "my-jwt-signing-secret-2024"\n'),
    "jwt secret in a config dict": ("auth.py", 'app.config["JWT_SECRET_KEY"] = "super-secret"\n'),
    "jwt secret in js": ("auth.js", 'const jwtSecret = "x7Kp9mQ2vL5nR8tW";\n'),
    "jwt secret in go": ("auth.go", 'var jwtSecret = []byte("x7Kp9mQ2vL5nR8tW")\n'),
    "a signed jwt": ("auth.py", f'TOKEN = "{JWT}"\n'),
    "pem private key": ("tls.py", f'KEY = """{PEM}"""\n'),
    "github token": ("ci.py", f'token = "{GITHUB}"\n'),
    "github fine-grained token": ("ci.py", 'GH = "github_pat_' + "11ABCDEFG0" + "a1" * 30 + '"\n'),
    "openai project key": ("ai.py", 'OpenAI(api_key="sk-' + 'proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv")\n'),
    "anthropic key": ("ai.py", 'k = "sk-' + 'ant-api03-Ab3dEf6hIj9kLm2nOp5qRs8tUv"\n'),
    "slack token": ("chat.py", 'SLACK = "xoxb-' + '1234567890-abcdefghij"\n'),
    "gitlab token": ("ci.py", 'GL = "glpat-' + 'Ab3dEf6hIj9kLm2nOp5q"\n'),
    "google api key": ("maps.py", 'MAPS = "AIza' + 'SyAb3dEf6hIj9kLm2nOp5qRs8tUv1wXy2z"\n'),
    "password literal": ("db.py", 'DB_PASSWORD = "correct horse battery staple"\n'),
}

#: Ordinary code that must stay eligible for remote tiers (name -> text).
HARMLESS = {
    "sha256 in a test": 'E = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"\n',
    "uuid": 'run_id = "123e4567-e89b-12d3-a456-426614174000"\n',
    "git sha": 'BASE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"\n',
    "md5 in a comment": 'assert h == md5(b"abc").hexdigest()  # 900150983cd24fb0d6963f7d28e17f72\n',
    "password from the environment": 'password = os.environ["DB_PASSWORD"]\n',
    "password check": "def check(user, password):\n    return compare_digest(user.pw, password)\n",
    "urls without credentials": 'U = "postgres://localhost:5432/app"\nA = "https://x.org/v1?p=2"\n',
    "a header name": 'TOKEN_HEADER = "Authorization"\n',
    "a secret looked up by name": 'secret = get_secret("db")\n',
    "the name of a key variable": 'api_key_env = "OPENAI_API_KEY"\n',
    "short base64": 'encoded = "aGVsbG8gd29ybGQ="\n',
    "sk-learn in prose": "'Sum: sk-learn is a library.'\n",
    "a long camel-case name": 'name = "TestUserRegistrationFlowWithInvalidEmail"\n',
    "unset keys": "api_key = None\npassword: str | None = None\n",
    "placeholders": 'API_KEY = "<your-api-key>"\nPASSWORD = "${DB_PASSWORD}"\n',
    "dsn without password": 'dsn = "postgresql://app@db/app"\n',
    "colours and versions": 'C = ["#ff00aa"]\nV = "1.2.3-rc.4+build.5"\n',
    "a long path": 'p = "/usr/local/lib/python3.11/site-packages/pkg/module.py"\n',
}


@pytest.mark.parametrize("name", sorted(CREDENTIALS))
def test_credentials_in_the_text_keep_a_span_local(tmp_path: Path, name: str) -> None:
    path, line = CREDENTIALS[name]
    text = f"def connect():\n    {line.rstrip()}\n    return client()\n"
    assert text_looks_secret(text, path), name
    assert not remote_allowed(tmp_path, f"app/{path}", text=text)


@pytest.mark.parametrize("name", sorted(HARMLESS))
def test_ordinary_code_may_go_remote(tmp_path: Path, name: str) -> None:
    text = f"def helper():\n    {HARMLESS[name].rstrip()}\n    return 1\n"
    assert not text_looks_secret(text), name
    assert remote_allowed(tmp_path, "app/helper.py", text=text)


def test_lines_skipped_before_detect_secrets_could_never_be_flagged_by_it() -> None:
    """The cheap pre-filter only drops lines detect-secrets itself finds nothing in."""
    from detect_secrets.core.scan import _process_line_based_plugins

    text_looks_secret("x = 1\n")  # configures detect-secrets as privacy.py runs it
    lines = [line for _, text in CREDENTIALS.values() for line in text.splitlines()]
    lines += [line for text in HARMLESS.values() for line in text.splitlines()]
    lines += Path(privacy.__file__).read_text().splitlines()
    for line in lines:
        if not privacy._CANDIDATE_LINE.search(line):
            assert not list(_process_line_based_plugins([(1, line)], "x.py")), line


def test_ignored_and_secret_named_files_stay_local(tmp_path: Path, write: Callable) -> None:
    write(".gitignore", "local_settings.py\nprivate/\n!private/keep.py\n")
    for path in ("local_settings.py", "config/.env", "deploy/secrets/db.py", "private/keep.py"):
        assert not remote_allowed(tmp_path, path, text="x = 1\n"), path
    assert not remote_allowed(tmp_path, "fixtures/data.py", ["fixtures/"], "x = 1\n")


def test_an_ignore_rule_added_mid_session_applies_at_once(tmp_path: Path, write: Callable) -> None:
    assert remote_allowed(tmp_path, "local_settings.py", text="x = 1\n")
    write(".gitignore", "local_settings.py\n")
    assert not remote_allowed(tmp_path, "local_settings.py", text="x = 1\n")


class _Opens:
    """Counts open() calls of one path (an audit hook: real reads, not a counter in the code)."""

    watched: str | None = None
    count = 0
    installed = False

    @classmethod
    def hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if event == "open" and cls.watched is not None and str(args[0]) == cls.watched:
            cls.count += 1


@pytest.fixture
def opens() -> Any:
    if not _Opens.installed:
        sys.addaudithook(_Opens.hook)
        _Opens.installed = True
    _Opens.count = 0
    yield _Opens
    _Opens.watched = None


def test_ignore_files_are_read_once_until_they_change(
    tmp_path: Path, write: Callable, opens: Any
) -> None:
    ignore = write("src/.spanlensignore", "\n".join(f"gen_{i}/" for i in range(2000)) + "\n")
    old = ignore.stat().st_mtime_ns - 10_000_000_000  # settled, not just written
    os.utime(ignore, ns=(old, old))
    opens.watched = str(ignore)
    for i in range(50):
        assert remote_allowed(tmp_path, f"src/mod{i}.py", text="x = 1\n")
    assert opens.count == 1
    # Same size, new mtime: the change is seen at once.
    ignore.write_text(ignore.read_text().replace("gen_1999/", "mod7.py  "))
    os.utime(ignore, ns=(old + 1_000_000_000, old + 1_000_000_000))
    opens.count = 0
    assert not remote_allowed(tmp_path, "src/mod7.py", text="x = 1\n")
    assert remote_allowed(tmp_path, "src/mod8.py", text="x = 1\n")
    assert opens.count == 1


def test_a_just_written_ignore_file_is_compared_not_trusted(
    tmp_path: Path, write: Callable
) -> None:
    """Rewritten within the timestamp's granularity, same size: still no stale rule."""
    ignore = write(".gitignore", "aaa.py\n")
    assert not remote_allowed(tmp_path, "aaa.py", text="x = 1\n")
    stamp = ignore.stat().st_mtime_ns
    ignore.write_text("bbb.py\n")
    os.utime(ignore, ns=(stamp, stamp))
    assert remote_allowed(tmp_path, "aaa.py", text="x = 1\n")
    assert not remote_allowed(tmp_path, "bbb.py", text="x = 1\n")


#: Secret-looking paths as people write them: capitals, mixed case, nested folders. Each is a
#: source file spanlens indexes, with code that trips no credential detector, so only the
#: path check (which folds case) keeps it local.
SECRET_LOOKING_PATHS = (
    ".ENV.py",
    "Secrets/prod.py",
    "deploy/CREDENTIALS/db.py",
    "app/ID_RSA.py",
    "home/.SSH/Config.py",
    "lib/MyApiKey.py",
    "auth/Password_Reset.py",
    "web/AUTH_TOKEN_store.js",
    "infra/Keys/rotate.py",
)


@pytest.mark.parametrize("path", SECRET_LOOKING_PATHS)
def test_secret_looking_names_are_matched_in_any_case(tmp_path: Path, path: str) -> None:
    assert privacy.looks_secret(path)
    assert privacy.looks_secret(path.upper()) and privacy.looks_secret(path.lower())
    assert not remote_allowed(tmp_path, path, text="def f():\n    return 1\n")


@pytest.mark.parametrize(
    "path", ["Secrets\\prod.py", "deploy\\Keys\\rotate.py", "app\\.SSH\\config.py"]
)
def test_windows_separators_split_folders_too(path: str) -> None:
    """A path written with backslashes (from a Windows client or tool) names its folders."""
    assert privacy.looks_secret(path)


@pytest.mark.parametrize("path", ["app/keyboard.py", "Secretary/notes.py", "src/Tokens.py"])
def test_case_folding_does_not_widen_what_looks_secret(path: str) -> None:
    assert not privacy.looks_secret(path)


async def test_remote_tiers_never_see_secret_looking_files_in_capitals(tmp_path: Path) -> None:
    """Through the engine, against a stand-in remote endpoint on 127.0.0.1: the spans of
    secret-looking files stay local whatever the case of their names, and the endpoint never
    receives their text; an ordinary file's span does reach it."""

    def source(path: str, name: str) -> str:
        if path.endswith(".js"):
            return f"function {name}(count) {{\n  return count + 41;\n}}\n"
        return f"def {name}(count):\n    return count + 41\n"

    names = {path: f"hidden_{number}" for number, path in enumerate(SECRET_LOOKING_PATHS)}
    files = {path: source(path, name) for path, name in names.items()}
    workspace(tmp_path, {**files, "app/plain.py": source("app/plain.py", "visible")})
    with StandinModelServer(responder=valid_responder) as server:
        settings = make_settings(backend(server.url, "cloud", tier="remote", remote=True))
        engine = open_engine(tmp_path, settings)
        try:
            spans = spans_named(engine.store, "visible", *names.values())
            assert [s.path for s in spans[1:]] == list(names)  # every one was indexed
            outcomes = await engine.enrich(spans)
        finally:
            await engine.aclose()
        bodies = [r.body.decode("utf-8", "replace") for r in server.chat_requests]
        sent = [parse_request(r) for r in server.chat_requests]
    assert outcomes[0].status == "enriched" and bodies, "the plain file reached the endpoint"
    assert {s["spans"][0]["path"] for s in sent if s} == {"app/plain.py"}, sent
    leaked = [path for path, name in names.items() if any(name in body for body in bodies)]
    assert leaked == [], f"sent to a remote tier: {leaked}"
    for span, outcome in zip(spans[1:], outcomes[1:], strict=True):
        assert outcome.status == "deferred", (span.path, outcome)
        assert "must not leave this machine" in (outcome.error or ""), (span.path, outcome)
