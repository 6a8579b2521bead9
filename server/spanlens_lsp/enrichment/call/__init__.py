"""The call: every structured model request goes one way.

``path`` owns the endpoint's slot, deadline, breaker, cool-down, GPU gate and the
``attempts`` record, and carries out ``retry``, the one retry policy (retry, more reply room,
fail over, escalate, defer); ``endpoints`` holds each endpoint's health; ``cascade`` runs a
span job over tiers (fitting prompts, landing spans, batch splitting) through the path;
``preflight`` probes the endpoints (the enrich pre-flight, doctor) through their own
clients and health.
"""
