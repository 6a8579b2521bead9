"""The reply: parse, repair and judge what a model sent. Nothing that fails here is stored.

``parse`` finds and repairs the JSON, ``validate`` checks it against the schema and the
span's facts, with ``grounding`` (names exist, the subject is this span), ``placeholders``
and ``contradictions`` (claims the code disproves); ``judge`` gives one call's verdict.
"""
