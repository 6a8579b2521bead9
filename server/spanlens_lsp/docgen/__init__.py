"""Per-file documentation: candidates and freshness keys, the overview call, render, write, job."""
