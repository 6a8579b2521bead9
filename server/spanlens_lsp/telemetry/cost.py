"""What a model call cost, from its token counts and the endpoint's prices."""

from __future__ import annotations


def call_cost(
    tokens_in: int | None,
    tokens_out: int | None,
    price_in_per_mtok: float,
    price_out_per_mtok: float,
) -> float:
    """Cost of one call in the prices' currency; prices are per million tokens.

    Local endpoints are priced 0, so they cost 0.0. A count the provider did not report
    (None, e.g. a failed call) or a negative one counts as 0 tokens.
    """
    billed_in = max(tokens_in or 0, 0)
    billed_out = max(tokens_out or 0, 0)
    return (billed_in * price_in_per_mtok + billed_out * price_out_per_mtok) / 1_000_000
