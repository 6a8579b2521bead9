"""Pending spans to validated enrichments, one folder a concept.

``planning`` (which spans, which tiers, which batches), ``prompt`` (what the model is shown),
``reply`` (parse, repair, judge), ``call`` (the one call path: slots, breakers, retries,
attempts) and ``backends`` (the providers). ``engine`` runs a list of spans through them and
writes what validated; ``runner`` is the command line's run to completion.
"""
