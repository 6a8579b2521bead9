"""Planning: which spans to ask about, in what groups, through which tiers.

``sources`` reads a span's lines and context, ``router`` picks its tiers by complexity,
``privacy`` keeps secret-looking and ignored files on this machine, ``batching`` groups small
related spans and ``calls`` turns routed spans into the call plans the call path runs.
"""
