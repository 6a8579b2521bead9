"""Exact nearest-neighbour search over one embedding model's vectors, held in memory.

The vectors of a (database, model) pair are read once into a float32 matrix and kept. Before
each search, SQLite's data version tells in microseconds whether anything was written since;
only then do three look-ups (:func:`~spanlens_lsp.store.embeddings.vectors_mark`) tell whether
rows were added, replaced or deleted. Added and replaced rows are read
alone (their rowids are past the last one seen); a deletion reloads the whole matrix.
Vectors are stored L2-normalised, so cosine similarity is one matrix-vector product.

The matrix holds vectors by span hash, not span id: a span whose code changes in place keeps
its id and gets a new hash, which the index sees without watching the spans table.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spanlens_lsp.store.embeddings import VectorsMark, model_vectors, vectors_mark
from spanlens_lsp.store.handle import Store, database_version
from spanlens_lsp.store.symbols import span_hashes, spans_mark

# numpy (~90 ms to import) is imported where a matrix is first made or searched, not at
# server start: a workspace without embeddings never pays for it.
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


def _empty_matrix() -> npt.NDArray[np.float32]:
    import numpy as np

    return np.zeros((0, 0), dtype=np.float32)


class DimensionMismatch(ValueError):
    """A query vector whose length is not that of the model's stored vectors."""


@dataclass(slots=True)
class VectorIndex:
    """One model's vectors of one database, by span hash."""

    model: str
    dims: int = 0
    #: Span hash of each matrix row.
    hashes: list[str] = field(default_factory=list)
    row_of: dict[str, int] = field(default_factory=dict)
    #: Rows ``[:len(hashes)]`` are vectors; the rest is room to grow into.
    matrix: npt.NDArray[np.float32] = field(default_factory=_empty_matrix)
    mark: VectorsMark | None = None
    #: The connection and its database version
    #: (:func:`~spanlens_lsp.store.handle.database_version`) at the last refresh: while both
    #: hold, nothing needs reading. The connection is held weakly: a closed one's id can be
    #: reused by a new connection whose counters start again.
    seen: tuple[weakref.ref[Any], tuple[int, int]] | None = None
    #: Vectors whose length was not ``dims`` (a model that changed shape): never searched.
    skipped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: (database version, vectors and spans marks) → (spans, spans without a vector).
    _missing: tuple[object, object, tuple[int, int]] | None = None

    def __len__(self) -> int:
        return len(self.hashes)

    def refresh(self, store: Store) -> bool:
        """Bring the matrix up to date with ``store``; whether anything was read."""
        # Before reading: a write after it is seen next time.
        conn, version = store.conn, database_version(store)
        if self.seen is not None and self.seen[0]() is conn and self.seen[1] == version:
            return False
        seen = (weakref.ref(conn), version)
        mark = vectors_mark(store, self.model)
        old = self.mark
        self.seen = seen
        if mark == old:
            return False
        if old is None or mark.count < old.count or mark.max_rowid < old.max_rowid:
            self._reload(store, mark)
            return True
        # From the last rowid seen: after the newest row is deleted, the next insert gets
        # its rowid again.
        self._apply(model_vectors(store, self.model, after_rowid=old.max_rowid))
        if len(self.hashes) + self.skipped != mark.count:  # a row was deleted meanwhile
            self._reload(store, mark)
        self.mark = mark
        return True

    def _reload(self, store: Store, mark: VectorsMark) -> None:
        self.dims = 0
        self.hashes = []
        self.row_of = {}
        self.skipped = 0
        self.matrix = _empty_matrix()
        self._apply(model_vectors(store, self.model))
        self.mark = mark

    def _apply(self, rows: list[tuple[int, str, bytes]]) -> None:
        if not rows:
            return
        import numpy as np

        if self.dims == 0:
            self.dims = len(rows[0][2]) // 4
        blobs = [blob for _, _, blob in rows]
        fitting = [len(blob) == self.dims * 4 for blob in blobs]
        self.skipped += fitting.count(False)
        vectors = np.frombuffer(
            b"".join(b for b, fits in zip(blobs, fitting, strict=True) if fits), dtype="<f4"
        ).reshape(-1, self.dims)
        hashes = [row[1] for row, fits in zip(rows, fitting, strict=True) if fits]
        new = [h for h in dict.fromkeys(hashes) if h not in self.row_of]
        self._reserve(len(self.hashes) + len(new))
        for h in new:
            self.row_of[h] = len(self.hashes)
            self.hashes.append(h)
        rows_at = np.fromiter((self.row_of[h] for h in hashes), dtype=np.int64, count=len(hashes))
        self.matrix[rows_at] = vectors

    def _reserve(self, rows: int) -> None:
        import numpy as np

        capacity = self.matrix.shape[0]
        if rows <= capacity and self.matrix.shape[1] == self.dims:
            return
        # Room for an eighth more on the first load, half more after: adding a few vectors
        # must not copy the whole matrix each time (0.16 s at 20,000 x 896 here).
        room = capacity * 3 // 2 if capacity else rows + rows // 8
        grown = np.zeros((max(rows, room, 1024), self.dims), dtype=np.float32)
        used = len(self.hashes)
        if used:
            grown[:used] = self.matrix[:used]
        self.matrix = grown

    def nearest(
        self, query: Sequence[float] | npt.NDArray[np.float32], k: int
    ) -> list[tuple[str, float]]:
        """The ``k`` span hashes most similar to ``query`` (cosine), best first."""
        size = len(self.hashes)
        if size == 0 or k <= 0:
            return []
        import numpy as np

        vector = self.checked(query)
        scores = self.matrix[:size] @ vector
        k = min(k, size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.hashes[i], float(scores[i])) for i in top]

    def checked(self, query: Sequence[float] | npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``query`` as a float32 vector; :class:`DimensionMismatch` when the index holds
        vectors of another length."""
        import numpy as np

        vector = np.asarray(query, dtype=np.float32)
        if self.hashes and vector.shape != (self.dims,):
            raise DimensionMismatch(
                f"the query embedding has {vector.size} dimensions, the stored ones {self.dims}"
            )
        return vector

    def missing(self, store: Store) -> tuple[int, int]:
        """(spans, spans without a vector of this model), after :meth:`refresh`; read again
        only when the vectors or the spans changed."""
        cached = self._missing
        if cached is not None and cached[0] is self.seen:
            return cached[2]
        key = (self.mark, spans_mark(store))
        if cached is None or cached[1] != key:
            hashes = span_hashes(store)
            without = sum(1 for h in hashes if h not in self.row_of)
            cached = (self.seen, key, (len(hashes), without))
        self._missing = (self.seen, key, cached[2])
        return cached[2]

    def memory_bytes(self) -> int:
        """Bytes held by the matrix (its spare rows included)."""
        return int(self.matrix.nbytes)


_indexes: dict[tuple[str, str], VectorIndex] = {}
_indexes_lock = threading.Lock()


def vector_index(store: Store, model: str) -> VectorIndex:
    """The up-to-date index of ``model``'s vectors in ``store``'s database, kept for the life
    of the process (one per database file and model)."""
    key = (str(store.path), model)
    with _indexes_lock:
        index = _indexes.setdefault(key, VectorIndex(model))
    with index.lock:
        index.refresh(store)
    return index


def nearest_spans(
    store: Store, model: str, query: Sequence[float], k: int
) -> tuple[list[tuple[str, float]], tuple[int, int]]:
    """The ``k`` span hashes whose ``model`` vectors are nearest ``query`` (refreshed first),
    and (spans, spans without a vector)."""
    index = vector_index(store, model)
    with index.lock:
        return index.nearest(query, k), index.missing(store)


#: The thread that multiplies: numpy lets go of the GIL for the matrix product, and SQLite
#: for its statements, so a search's name and keyword queries run while it does.
_products = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spanlens-vectors")


def start_nearest_spans(
    store: Store, model: str, query: Sequence[float], k: int
) -> tuple[Future[list[tuple[str, float]]], tuple[int, int]]:
    """:func:`nearest_spans` with the matrix product on another thread: the index is
    refreshed and the spans without a vector counted here, on the store's thread; the
    nearest hashes come from the future. :class:`DimensionMismatch` is raised here (and by
    the future only if another thread reloaded vectors of another length meanwhile)."""
    index = vector_index(store, model)
    with index.lock:
        vector = index.checked(query)
        counts = index.missing(store)
    return _products.submit(_nearest_locked, index, vector, k), counts


def _nearest_locked(
    index: VectorIndex, query: npt.NDArray[np.float32], k: int
) -> list[tuple[str, float]]:
    with index.lock:  # a refresh by another store thread waits for the product
        return index.nearest(query, k)
