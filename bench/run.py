"""`make bench`: run every benchmark, print its table, write bench/results/<name>.json.

Figures are ratios against baselines measured in the same run where possible: the machines
here are shared and noisy, so absolute times are context, not verdicts.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests.support (stand-in model server)
sys.path.insert(0, str(HERE))

BENCHMARKS = [
    "bench_index",
    "bench_enrichment",
    "bench_lsp",
    "bench_privacy",
    "bench_docgen",
    "bench_real_model",
    "bench_prompt_speed",
    "bench_search",
    "bench_embed_idle",
    "bench_quality",  # opt-in: SPANLENS_BENCH_QUALITY=1 (the real model, many minutes)
    "bench_retrieval",  # its model rows opt-in: SPANLENS_BENCH_RETRIEVAL=1
]


def main() -> int:
    """Run the selected benchmarks; exit non-zero if any crashed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", default=BENCHMARKS, help="benchmarks to run")
    args = parser.parse_args()
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    failed = []
    for name in args.names:
        print(f"\n== {name} ==", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            print(f"skipped: {exc}")
            continue
        try:
            result = module.run()
        except Exception as exc:  # report and go on with the other benchmarks
            print(f"FAILED: {type(exc).__name__}: {exc}")
            failed.append(name)
            continue
        result["wall_seconds"] = round(time.perf_counter() - started, 2)
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"-> {path.relative_to(HERE.parent)}")
    return 1 if failed else 0


def print_table(rows: list[tuple[str, str, str]]) -> None:
    """Print (metric, value, target) rows aligned."""
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"{'metric':<{width}}  {'value':>{vwidth}}  target")
    for metric, value, target in rows:
        print(f"{metric:<{width}}  {value:>{vwidth}}  {target}")


if __name__ == "__main__":
    sys.exit(main())
