"""Settings for tests that drive one stand-in backend: fast backoff, no retries, no GPU."""

from __future__ import annotations

from typing import Any

from spanlens_lsp.config import settings_from_dict
from spanlens_lsp.settings import Settings


def one_backend_settings(url: str, **enrichment: Any) -> Settings:
    """One small-tier backend at ``url`` (one slot, priced so costs show), with backoff in
    milliseconds, no retries and no batching unless ``enrichment`` says otherwise."""
    return settings_from_dict(
        {
            "enrichment": {
                "backoff_base": 0.005,
                "backoff_max": 0.05,
                "batch": False,
                "retries": 0,
                **enrichment,
            },
            "gpu": {"enabled": False},
            "docgen": {"enabled": True},
            "backends": [
                {
                    "name": "local",
                    "tier": "small",
                    "url": url,
                    "timeout": 5,
                    "max_parallel": 1,
                    "price_in": 1.0,
                    "price_out": 2.0,
                }
            ],
        }
    )
