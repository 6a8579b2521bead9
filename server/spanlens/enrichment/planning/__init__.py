"""Planning: which spans to ask about, in what groups, through which tiers.

``sources`` reads a span's lines and context, ``router`` picks its tiers by complexity,
``privacy`` keeps secret-looking and ignored files on this machine, ``batching`` groups small
related spans and ``jobs`` turns routed spans into the jobs the call path runs.
"""
