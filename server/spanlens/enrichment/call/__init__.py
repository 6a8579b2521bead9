"""The call: every structured model request goes one way.

``path`` owns the endpoint's slot, deadline, breaker, cool-down, GPU gate, retries and the
``attempts`` record; ``endpoints`` holds each endpoint's health; ``cascade`` runs a span job
over tiers (fitting prompts, escalation, batch splitting) through the path; ``preflight``
probes the endpoints (the enrich pre-flight, doctor) through their own clients and health.
"""
