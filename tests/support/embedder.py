"""A stand-in embedding endpoint for tests: hashed bag of word stems, deterministic.

Texts that share word stems (the first five letters of each word) get similar vectors, so a
query written from what a function does lands near the function's docstring. Test scaffolding
for the meaning path, not a model.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from dataclasses import dataclass

from spanlens_lsp.embedding.endpoints import EmbedFailure

DIMS = 64
_STOP = {"the", "a", "an", "of", "to", "from", "and", "or", "in", "on", "for", "with", "def"}


def stems(text: str) -> list[str]:
    """The word stems a text is embedded from (identifiers split on ``_``)."""
    words = re.findall(r"[a-z]+", text.replace("_", " ").lower())
    return [w[:5] for w in words if w not in _STOP]


def bag_vector(text: str, dims: int = DIMS) -> list[float]:
    """The L2-normalised hashed bag of ``text``'s stems (all zeros but one for no stem)."""
    vector = [0.0] * dims
    for stem in stems(text):
        digest = hashlib.sha256(stem.encode()).digest()
        vector[digest[0] % dims] += 1.0 if digest[1] % 2 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0:
        vector[0] = norm = 1.0
    return [v / norm for v in vector]


@dataclass(slots=True, frozen=True)
class BagResult:
    """What search reads of an embed result: ``vectors``, one per text."""

    vectors: list[list[float]]


class BagOfWordsEmbedder:
    """An embedder (:class:`spanlens_lsp.embedding.endpoints.Embedder`) that can be told to fail
    or to be slow."""

    def __init__(self, model: str = "bag-of-words", *, delay: float = 0.0) -> None:
        self.model = model
        self.delay = delay
        self.fail: str | None = None
        self.calls: list[list[str]] = []

    async def embed(self, texts: list[str]) -> BagResult:
        """Vectors of ``texts``, after ``delay`` seconds; :class:`EmbedFailure` when told."""
        self.calls.append(list(texts))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise EmbedFailure(self.fail)
        return BagResult([bag_vector(text) for text in texts])
