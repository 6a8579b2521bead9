"""Test support shared by unit tests, LSP tests and benchmarks (``from tests.support...``)."""
