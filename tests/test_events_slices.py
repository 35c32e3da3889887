"""validate_in_slices' one-call check of a slice, and where its valid events are placed.

Pins what the whole-batch comparisons in test_pipeline.py cannot see: an event exactly on an edge
of the time window stays valid when the slice also holds a late event (so each event is placed on
its own); which items go through the one-call check and which go item by item (the two paths give
the same outcome, so only the checks made tell them apart: a batch of valid events must cost one
call per slice, as the comments in events.py promise); and that report_json_array reports a
retimed event of a later piece at its own index.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from forwarder import events
from forwarder.events import FieldError, Validation, validate_in_slices, validate_json_array
from forwarder.pipeline import report_json_array
from forwarder.settings import Settings
from tests.support.entry_helpers import loopback_env

NOW = 1_709_294_400_000  # 2024-03-01T12:00:00Z
EARLIEST = NOW - 3_600_000 + 20_000
LATEST = NOW + 600_000 - 20_000
TWO_HOURS_AGO = NOW - 7_200_000
# TWO_HOURS_AGO is 3,620 s before EARLIEST.
TOO_OLD = (
    "is 3620 s older than Cloud Eye accepts (at most 1 hour minus 20 s in the past); "
    "FORWARDER_LATE_EVENTS=retime would send it with the current time"
)


def event(name: str, when: int = NOW) -> dict[str, Any]:
    return {"event_name": name, "event_source": "abc.def", "time": when, "detail": {}}


def merged(slices: list[Validation]) -> Validation:
    """The slices' outcomes as one (their indexes already count over the whole input)."""
    whole = Validation(count=0)
    for part in slices:
        whole.valid.extend(part.valid)
        whole.errors.update(part.errors)
        whole.retimed.update(part.retimed)
        whole.count += part.count
    return whole


# --- an event on an edge of the window, next to a late one -----------------------------------------

EDGE_ITEMS = [event("first", EARLIEST), event("last", LATEST), event("late", TWO_HOURS_AGO)]


def _one_call_outcomes(late: str) -> list[Validation]:
    """EDGE_ITEMS validated by both one-call paths: a slice of Python items and a JSON array."""
    from_slices = merged(list(validate_in_slices(EDGE_ITEMS, clock=lambda: NOW, late=late)))
    from_json = validate_json_array(json.dumps(EDGE_ITEMS), clock=lambda: NOW, late=late)
    assert from_json is not None  # every item is a valid event: the one-pass path takes it
    return [from_slices, from_json]


def test_events_on_the_window_edges_stay_valid_beside_a_rejected_late_event() -> None:
    for outcome in _one_call_outcomes("reject"):
        assert outcome.valid == [(0, EDGE_ITEMS[0]), (1, EDGE_ITEMS[1])]
        assert outcome.errors == {2: [FieldError("time", TOO_OLD)]}
        assert outcome.retimed == {}


def test_events_on_the_window_edges_keep_their_time_beside_a_retimed_late_event() -> None:
    for outcome in _one_call_outcomes("retime"):
        assert [(index, item["time"]) for index, item in outcome.valid] == [
            (0, EARLIEST),
            (1, LATEST),
            (2, NOW),  # the only retimed event: sent at the current time
        ]
        assert outcome.retimed == {2: TWO_HOURS_AGO}
        assert outcome.errors == {}


# --- which items the one-call check sees, and which go item by item --------------------------------


class Checks:
    """Records the checks validate_in_slices makes, passing each on to the real validator: the
    size of each slice given to the one-call check, and the name of each item checked alone."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.one_call: list[int] = []
        self.item_by_item: list[Any] = []
        whole = events.event_list_adapter().validator.validate_python
        alone = events.event_adapter().validator.validate_python

        def check_slice(items: Any, *args: Any, **kwargs: Any) -> Any:
            self.one_call.append(len(items))
            return whole(items, *args, **kwargs)

        def check_item(item: Any, *args: Any, **kwargs: Any) -> Any:
            self.item_by_item.append(item.get("event_name") if isinstance(item, dict) else item)
            return alone(item, *args, **kwargs)

        list_adapter = SimpleNamespace(validator=SimpleNamespace(validate_python=check_slice))
        item_adapter = SimpleNamespace(validator=SimpleNamespace(validate_python=check_item))
        monkeypatch.setattr(events, "event_list_adapter", lambda: list_adapter)
        monkeypatch.setattr(events, "event_adapter", lambda: item_adapter)


def test_a_batch_of_valid_events_takes_one_check_per_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    items = [event(f"e{index}") for index in range(250)]
    checks = Checks(monkeypatch)

    slices = list(validate_in_slices(items, clock=lambda: NOW, size=100))

    assert checks.one_call == [100, 100, 50]
    assert checks.item_by_item == []  # no Python step per valid item
    assert [part.count for part in slices] == [100, 100, 50]
    assert merged(slices).valid == list(enumerate(items))


def test_after_a_slice_with_a_bad_item_the_rest_go_item_by_item(monkeypatch: pytest.MonkeyPatch) -> None:
    # A bad item in the first slice: that slice is checked twice, the later ones only item by item
    # (a batch with bad items scattered through it pays for at most one wasted check).
    items: list[Any] = [event("e0"), 0, *(event(f"e{index}") for index in range(2, 7))]
    checks = Checks(monkeypatch)

    slices = list(validate_in_slices(items, clock=lambda: NOW, size=3))

    assert checks.one_call == [3]
    assert checks.item_by_item == ["e0", 0, "e2", "e3", "e4", "e5", "e6"]
    outcome = merged(slices)
    assert [index for index, _ in outcome.valid] == [0, 2, 3, 4, 5, 6]
    assert list(outcome.errors) == [1]


def test_items_given_the_default_source_go_item_by_item_from_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without their own event_source no item can pass the one-call check: it is not tried at all.
    items = [{"event_name": f"e{index}", "time": NOW, "detail": {}} for index in range(5)]
    checks = Checks(monkeypatch)

    slices = list(validate_in_slices(items, clock=lambda: NOW, size=2, default_source="app.orders"))

    assert checks.one_call == []
    assert checks.item_by_item == ["e0", "e1", "e2", "e3", "e4"]
    outcome = merged(slices)
    assert [(index, item["event_source"]) for index, item in outcome.valid] == [
        (index, "app.orders") for index in range(5)
    ]
    assert outcome.errors == {}


# --- report_json_array: a retimed event in a later piece ------------------------------------------


def test_a_retimed_event_of_a_later_piece_reports_its_original_time_at_its_own_index() -> None:
    # The second piece's indexes are moved up by the first piece's count, its retimed events' too.
    # The late event is not the last item: an index moved the wrong way could end up counting
    # from the end of the results and still land on it.
    # A dry run: nothing is sent to the endpoint.
    settings = Settings.from_env(environ=loopback_env("http://127.0.0.1:9", FORWARDER_LATE_EVENTS="retime"))
    first_piece = [event("a"), event("b"), event("c")]
    pieces = [json.dumps(first_piece), json.dumps([event("old", TWO_HOURS_AGO), event("d")])]

    report = report_json_array(pieces, settings=settings, clock=lambda: NOW, dry_run=True)

    assert report is not None
    summary = [(r["index"], r["status"], r["event_name"], r.get("retimed_from")) for r in report.results]
    assert summary == [
        (0, "accepted", "a", None),
        (1, "accepted", "b", None),
        (2, "accepted", "c", None),
        (3, "accepted", "old", TWO_HOURS_AGO),
        (4, "accepted", "d", None),
    ]
