"""Privacy checks on the path of every remote prompt: ignore rules and credential detection.

Two figures, each with its baseline measured in the same run:

- ``remote_allowed()`` per span in a workspace whose ignore files hold 10,000 patterns, with
  the parsed rules kept until an ignore file changes (now) against parsing them again for
  every span (what the check did before: the cache emptied before each call).
- the credential check (detect-secrets plus spanlens' own shapes) per span-sized chunk of
  real code (the standard library), uncached, and the share of chunks it keeps local.
"""

from __future__ import annotations

import os
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

PATTERNS = 10_000
SPANS = 40


def _workspace(root: Path) -> list[str]:
    lines = [f"generated/module_{i}/*.py" if i % 2 else f"**/cache_{i}/" for i in range(PATTERNS)]
    (root / ".gitignore").write_text("\n".join(lines[: PATTERNS // 2]) + "\n")
    (root / "pkg").mkdir()
    (root / "pkg" / ".spanlensignore").write_text("\n".join(lines[PATTERNS // 2 :]) + "\n")
    settled = time.time_ns() - 60_000_000_000
    for ignore in (root / ".gitignore", root / "pkg" / ".spanlensignore"):
        os.utime(ignore, ns=(settled, settled))
    return [f"pkg/sub{i % 4}/mod_{i}.py" for i in range(SPANS)]


def _per_call_ms(root: Path, paths: list[str], *, reparse: bool) -> list[float]:
    from spanlens_lsp.enrichment.planning.privacy import remote_allowed
    from spanlens_lsp.indexing import walk

    times = []
    for path in paths:
        if reparse:
            walk._SPEC_CACHE.clear()
        started = time.perf_counter()
        remote_allowed(root, path, None, None)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _stdlib_chunks(limit: int = 600, lines_each: int = 30) -> list[tuple[str, str]]:
    chunks = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for start in range(0, len(lines), lines_each):
            chunks.append((path.name, "\n".join(lines[start : start + lines_each])))
            if len(chunks) >= limit:
                return chunks
    return chunks


def run() -> dict[str, Any]:
    """Measure both checks; print a table; return the figures."""
    from spanlens_lsp.enrichment.planning import privacy

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = _workspace(root)
        _per_call_ms(root, paths[:2], reparse=False)  # warm imports
        before = _per_call_ms(root, paths, reparse=True)
        after = _per_call_ms(root, paths, reparse=False)
    chunks = _stdlib_chunks()
    privacy.text_looks_secret("x = 1\n")  # import and configure detect-secrets once
    privacy._verdicts.clear()
    started = time.perf_counter()
    flagged = sum(privacy.text_looks_secret(text, name) for name, text in chunks)
    scan_ms = (time.perf_counter() - started) * 1000 / len(chunks)
    started = time.perf_counter()
    for name, text in chunks:
        privacy.text_looks_secret(text, name)
    cached_ms = (time.perf_counter() - started) * 1000 / len(chunks)
    result = {
        "ignore_patterns": PATTERNS,
        "remote_allowed_reparse_p50_ms": round(statistics.median(before), 3),
        "remote_allowed_cached_p50_ms": round(statistics.median(after), 3),
        "speedup": round(statistics.median(before) / max(statistics.median(after), 1e-6), 1),
        "credential_scan_chunks": len(chunks),
        "credential_scan_ms_per_30_lines": round(scan_ms, 3),
        "credential_scan_cached_ms": round(cached_ms, 4),
        "credential_scan_flagged_share": round(flagged / len(chunks), 4),
    }
    print(f"remote_allowed() per span, {PATTERNS} ignore patterns in two files:")
    print(f"  parsed again per span (before): p50 {result['remote_allowed_reparse_p50_ms']} ms")
    print(f"  parsed once per change (now):   p50 {result['remote_allowed_cached_p50_ms']} ms")
    print(f"  speed-up {result['speedup']}x")
    print(
        f"credential check: {scan_ms:.2f} ms per 30-line chunk uncached, "
        f"{cached_ms:.4f} ms cached; {flagged} of {len(chunks)} stdlib chunks kept local"
    )
    return result


if __name__ == "__main__":
    import json

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "server"))
    print(json.dumps(run(), indent=2))
