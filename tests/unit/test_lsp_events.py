"""The lsp/ event fan-out: every listener hears each event in the order it subscribed, and one
that raises is logged without keeping the event from the others."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from spanlens_lsp.lsp.events import Events, Listener
from spanlens_lsp.store.rows import SpanRow


class Recorder(Listener):
    def __init__(self, name: str, heard: list[str]) -> None:
        self.name = name
        self.heard = heard

    def document_indexed(self, uri: str, path: str, lenses_moved: bool) -> None:
        self.heard.append(f"{self.name}: indexed {path} {lenses_moved}")

    def enriched(self, spans: list[SpanRow], outcomes: list[Any]) -> None:
        self.heard.append(f"{self.name}: enriched {len(outcomes)}")


class Broken(Listener):
    def enriched(self, spans: list[SpanRow], outcomes: list[Any]) -> None:
        raise RuntimeError("this listener is broken")


def test_each_listener_hears_an_event_in_subscription_order() -> None:
    heard: list[str] = []
    events = Events()
    events.subscribe(Recorder("first", heard), Listener(), Recorder("second", heard))
    events.document_indexed("file:///w/a.py", "a.py", True)
    events.settings_changed(engine_replaced=False)  # nobody overrides it: nothing happens
    assert heard == ["first: indexed a.py True", "second: indexed a.py True"]


def test_a_failing_listener_is_logged_and_the_others_still_hear_the_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[str] = []
    events = Events()
    events.subscribe(Recorder("before", heard), Broken(), Recorder("after", heard))
    logger = logging.getLogger("spanlens_lsp")
    propagate, logger.propagate = logger.propagate, True  # the server's setup turns it off
    try:
        with caplog.at_level(logging.ERROR, logger="spanlens_lsp.lsp.events"):
            events.enriched([], ["outcome"])
    finally:
        logger.propagate = propagate
    assert heard == ["before: enriched 1", "after: enriched 1"]
    assert [r.getMessage() for r in caplog.records] == ["Broken failed on enriched"]
    assert "this listener is broken" in caplog.text
