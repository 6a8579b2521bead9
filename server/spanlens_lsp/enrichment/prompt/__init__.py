"""The prompt: what the model is shown and what shape its answer must take.

``source`` is the span as shown and as judged, ``names`` what its code knows, ``build`` the
messages (stable-first, for prompt caches), ``excerpts`` a long span cut to its skeleton and
``schema`` the enrichment's JSON schema and reply bounds. The versions live in
:mod:`spanlens_lsp.states`.
"""
