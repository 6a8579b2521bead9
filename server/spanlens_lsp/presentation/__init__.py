"""What a user sees of a span (state, facts, enrichment) as Markdown, plain text or JSON.

Shared by the language server's hovers and `spanlens show`, so both always agree.
"""
