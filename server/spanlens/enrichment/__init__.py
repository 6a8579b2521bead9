"""Pending spans to validated enrichments: schema, prompts, router, cascade, backends."""
