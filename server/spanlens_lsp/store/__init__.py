"""SQLite store: schema, numbered migrations and every SQL statement spanlens runs.

One query style, by table:

- :class:`~spanlens_lsp.store.handle.Store` methods for the connection (opening, transactions,
  checks) and for the ``files`` and ``spans`` tables the indexer writes;
- one module of free functions ``f(store, …)`` per other table: :mod:`.enrichments`
  (``enrichments``, ``failures``, ``attempts``, and the pending rule that reads spans against
  them), :mod:`.claims` (``claims``), :mod:`.docs` (``docs``, ``doc_failures``, what docgen
  reads), :mod:`.symbols` (the ``span_search`` index).

Opening, recovery and paths are in :mod:`.db`, the rows in :mod:`.rows`, the errors in
:mod:`.errors`, the span state rule as SQL in :mod:`.states`. Import each name from the
module that defines it: this package re-exports nothing.
"""
