"""Exact edges of one attempt, a fork's fresh state and a 429's wait, which the behaviour tests
leave open.

``_attempt`` is driven directly: an injected clock that stands still unless the client sleeps, a
pacer whose turns come from a script, and an exchange that answers 201 without a socket, so the
deadline's edges (``MIN_ATTEMPT_S`` left, a turn that would leave less) are met exactly.
The same fakes carry a chunk through ``_deliver_safely`` and ``send``: a request stopped while it
waited for its slot, a scrubbed refusal, a retry's wait at the deadline's edge, the workers and a
failing result callback.
"""

from __future__ import annotations

import random
import threading

import pytest

from forwarder import client as client_module
from forwarder.batching import Chunk
from forwarder.client import MIN_ATTEMPT_S, AdaptiveLimit, ChunkOutcome, CloudEyeClient, Part, _Answer
from forwarder.pacing import RateController
from forwarder.settings import Settings
from tests.support.fake_time import FakeTime

SETTINGS_ENV = {
    "HUAWEICLOUD_SDK_AK": "mutant-access-key",
    "HUAWEICLOUD_SDK_SK": "mutant-secret-key",
    "HUAWEICLOUD_SDK_PROJECT_ID": "0123456789abcdef0123456789abcdef",
    "CLOUDEYE_ENDPOINT": "http://127.0.0.1:9",  # never connected to: the exchange is faked
    "CLOUDEYE_TIMEOUT_S": "10",
}
PIECE = Chunk((0,), b"[]")


class ScriptedPacer:
    """The pacer as ``_attempt`` sees it: each turn's wait from a script, and what it was told."""

    def __init__(self, clock: FakeTime, waits: tuple[float, ...]) -> None:
        self.clock = clock
        self.waits = list(waits)
        self.cuts = 0
        self.waited: list[bool] = []  # the flag of each success

    def reserve(self, *, retry: bool = False) -> float:
        return self.waits.pop(0) if self.waits else 0.0

    def succeeded(self, *, waited: bool) -> None:
        self.waited.append(bool(waited))  # the RateController reads it as a truth value


class RecordingLimit(AdaptiveLimit):
    """An ``AdaptiveLimit`` that records how long each caller was ready to wait for a slot."""

    def __init__(self) -> None:
        super().__init__(4)
        self.timeouts: list[float | None] = []

    def acquire(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        return super().acquire(timeout)


class Setup:
    """A client at clock 0 with ``left`` seconds before its deadline, a scripted pacer and a
    faked exchange that records each budget."""

    def __init__(self, left: float, waits: tuple[float, ...] = ()) -> None:
        self.clock = FakeTime()
        self.clock.now = 0.0
        self.client = CloudEyeClient(
            Settings.from_env(environ=SETTINGS_ENV),
            deadline=left,
            sleep=self.clock.sleep,
            monotonic=self.clock,
            rng=random.Random(3),
        )
        self.pacer = ScriptedPacer(self.clock, waits)
        self.client.pacer = self.pacer  # type: ignore[assignment]
        self.budgets: list[float] = []
        self.client._exchange = self._exchange  # type: ignore[method-assign]

    def _exchange(self, body: bytes, budget: float) -> _Answer:
        self.budgets.append(budget)
        return _Answer(201, {}, b"[]")


# --- the deadline before and after the turn ---------------------------------------------------


def test_an_attempt_with_exactly_the_minimum_time_left_is_made_within_that_time() -> None:
    setup = Setup(left=MIN_ATTEMPT_S)
    answer, _ = setup.client._attempt(PIECE, AdaptiveLimit(4), retry=False)
    assert answer.status == 201
    assert setup.budgets == [MIN_ATTEMPT_S]  # the deadline, not CLOUDEYE_TIMEOUT_S, bounds it


def test_with_less_than_the_minimum_left_no_slot_is_taken() -> None:
    setup = Setup(left=MIN_ATTEMPT_S / 2)
    limit = RecordingLimit()
    with pytest.raises(client_module._OutOfTime):
        setup.client._attempt(PIECE, limit, retry=False)
    assert limit.timeouts == []  # out of time before waiting for a slot, not after
    assert setup.budgets == []


def test_the_wait_for_a_slot_ends_at_the_deadline() -> None:
    setup = Setup(left=2.0)
    limit = RecordingLimit()
    setup.client._attempt(PIECE, limit, retry=False)
    assert limit.timeouts == [2.0]


def test_a_turn_that_leaves_exactly_the_minimum_time_is_waited_for() -> None:
    # 1.0 + MIN_ATTEMPT_S is the deadline to the last bit: the turn fits, and the exchange gets
    # what is left after it (a hair over MIN_ATTEMPT_S in floating point).
    setup = Setup(left=1.0 + MIN_ATTEMPT_S, waits=(1.0,))
    answer, sent_at = setup.client._attempt(PIECE, AdaptiveLimit(4), retry=False)
    assert answer.status == 201
    assert setup.clock.sleeps == [1.0]
    assert sent_at == 1.0
    assert setup.budgets == [(1.0 + MIN_ATTEMPT_S) - 1.0]


def test_a_turn_that_would_leave_less_than_the_minimum_is_not_waited_for() -> None:
    # Waiting 1 s of the 1.02 s left would leave no time to send: the time is not spent, and the
    # slot goes back as it was taken (not as a 429, which would halve the limit).
    setup = Setup(left=1.02, waits=(1.0,))
    limit = AdaptiveLimit(4)
    with pytest.raises(client_module._OutOfTime):
        setup.client._attempt(PIECE, limit, retry=False)
    assert setup.clock.sleeps == []
    assert setup.budgets == []
    assert (limit.limit, limit._in_flight) == (4, 0)


def test_a_request_stopped_while_it_waited_for_its_slot_gives_the_slot_back_unthrottled() -> None:
    setup = Setup(left=5.0)
    setup.client._broken = "Cloud Eye answered 401"
    limit = AdaptiveLimit(4)
    with pytest.raises(client_module._Stopped):
        setup.client._attempt(PIECE, limit, retry=False)
    assert (limit.limit, limit._in_flight) == (4, 0)
    assert setup.budgets == []


# --- what the pacer is told ---------------------------------------------------------------------


def test_the_pacer_hears_that_a_request_waited_for_its_turn() -> None:
    setup = Setup(left=5.0, waits=(0.25,))
    setup.client._attempt(PIECE, AdaptiveLimit(4), retry=False)
    assert setup.clock.sleeps == [0.25]
    assert setup.pacer.waited == [True]


def test_the_pacer_hears_that_a_request_went_at_once() -> None:
    setup = Setup(left=5.0)
    setup.client._attempt(PIECE, AdaptiveLimit(4), retry=False)
    assert setup.clock.sleeps == []
    assert setup.pacer.waited == [False]


# --- a 429 without Retry-After ------------------------------------------------------------------


def test_a_429_without_retry_after_waits_only_the_backoff() -> None:
    # No Retry-After: the account has room again at once, so the retry waits the backoff's jitter
    # (at most 0.1 s on the first try), not a second.
    clock = FakeTime()
    client = CloudEyeClient(
        Settings.from_env(environ=SETTINGS_ENV), sleep=clock.sleep, monotonic=clock, rng=random.Random(3)
    )
    client.pacer = RateController(clock=clock, rng=random.Random(4))
    jitter = random.Random()
    jitter.setstate(client.rng.getstate())
    expected = jitter.uniform(0, 0.1)

    assert client._delay(1, None, sent_at=clock.now, throttled=True) == expected
    assert client.pacer.cuts == 1


# --- a forked child -----------------------------------------------------------------------------


def test_a_forked_child_gets_a_new_watchdog_new_pools_and_a_lock_nobody_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The parent's state, put in place so that teardown restores the real one.
    parent_watchdog = client_module._Watchdog()
    parent_pool = client_module._ConnectionPool("http", "127.0.0.1", 9)
    parent_pools = {("http", "127.0.0.1", 9, None): parent_pool}
    parent_lock = threading.Lock()
    monkeypatch.setattr(client_module, "_watchdog", parent_watchdog)
    monkeypatch.setattr(client_module, "_pools", parent_pools)
    monkeypatch.setattr(client_module, "_pools_lock", parent_lock)

    with parent_lock:  # another thread of the parent held it at the fork: it never releases it
        client_module._after_fork_in_child()
        child_lock = client_module._pools_lock
        assert child_lock is not parent_lock
        assert child_lock.acquire(blocking=False)
        child_lock.release()
        child_pool = client_module._pool_for("http", "127.0.0.1", 9)

    watchdog = client_module._watchdog
    assert isinstance(watchdog, client_module._Watchdog)
    assert watchdog is not parent_watchdog and watchdog._thread is None
    assert child_pool is not parent_pool
    assert client_module._pools == {("http", "127.0.0.1", 9, None): child_pool}
    assert parent_pools == {("http", "127.0.0.1", 9, None): parent_pool}  # dropped, not emptied


# --- a chunk's request through _send_piece --------------------------------------------------------


class ScriptedSetup(Setup):
    """``Setup`` whose faked exchange gives the answers of a script, in order."""

    def __init__(self, left: float, answers: list[_Answer]) -> None:
        super().__init__(left)
        self.answers = answers

    def _exchange(self, body: bytes, budget: float) -> _Answer:
        self.budgets.append(budget)
        return self.answers.pop(0)


class BreakingLimit(AdaptiveLimit):
    """An ``AdaptiveLimit`` whose slot comes only after another request found a configuration
    error (the client's ``_broken`` is set while this one waits)."""

    def __init__(self, client: CloudEyeClient, error: str) -> None:
        super().__init__(4)
        self.client, self.error = client, error

    def acquire(self, timeout: float | None = None) -> bool:
        self.client._broken = self.error
        return super().acquire(timeout)


def test_a_request_stopped_while_it_waited_for_its_slot_fails_with_the_configuration_error() -> None:
    setup = Setup(left=5.0)
    error = "Cloud Eye answered 401; Cloud Eye refused the credentials: check the credentials"
    outcome = ChunkOutcome(PIECE)
    setup.client._deliver_safely(outcome, BreakingLimit(setup.client, error))
    assert outcome.parts == [Part((0,), "failed", error=error, transient=False)]
    assert setup.budgets == []


def test_a_refusal_that_quotes_the_secret_key_is_recorded_without_it() -> None:
    setup = ScriptedSetup(left=5.0, answers=[_Answer(400, {}, b"bad signature for mutant-secret-key")])
    outcome = ChunkOutcome(PIECE)
    setup.client._deliver_safely(outcome, AdaptiveLimit(4))
    assert outcome.parts == [Part((0,), "refused", error="Cloud Eye answered 400: bad signature for ***")]


def test_a_retry_whose_wait_leaves_less_than_the_minimum_is_not_waited_for() -> None:
    # Retry-After 1 s with 1.02 s left: the wait fits, the attempt after it would not.
    setup = ScriptedSetup(left=1.02, answers=[_Answer(503, {"retry-after": "1"}, b"")])
    outcome = ChunkOutcome(PIECE)
    setup.client._deliver_safely(outcome, AdaptiveLimit(4))
    assert outcome.parts == [
        Part((0,), "failed", error="Cloud Eye answered 503; stopped retrying: the invocation is out of time")
    ]
    assert outcome.retry_after == 1.0
    assert setup.clock.sleeps == []
    assert len(setup.budgets) == 1


def test_a_retry_whose_wait_leaves_exactly_the_minimum_is_made() -> None:
    # 1.0 + MIN_ATTEMPT_S left and Retry-After 1 s: the wait and the minimum fit to the last bit.
    setup = ScriptedSetup(
        left=1.0 + MIN_ATTEMPT_S,
        answers=[_Answer(503, {"retry-after": "1"}, b""), _Answer(201, {}, b'[{"event_id": "e1"}]')],
    )
    outcome = ChunkOutcome(PIECE)
    setup.client._deliver_safely(outcome, AdaptiveLimit(4))
    assert outcome.parts == [Part((0,), "accepted", created=[{"event_id": "e1"}])]
    assert setup.clock.sleeps == [1.0]
    assert setup.budgets == [1.0 + MIN_ATTEMPT_S, (1.0 + MIN_ATTEMPT_S) - 1.0]


# --- the send's workers ---------------------------------------------------------------------------


def test_the_chunks_are_sent_by_daemon_threads() -> None:
    # A send interrupted in the caller (its join cut short) must not keep the process alive.
    setup = Setup(left=5.0)
    seen: list[tuple[bool, bool]] = []

    def on_done(outcome: ChunkOutcome) -> None:
        thread = threading.current_thread()
        seen.append((thread is threading.main_thread(), thread.daemon))

    outcomes = setup.client.send([PIECE], on_done=on_done)
    assert [outcome.ok for outcome in outcomes] == [True]
    assert seen == [(False, True)]


def test_events_a_failing_result_callback_left_unsettled_fail_with_its_error_type() -> None:
    # The callback takes the chunk's parts away, then fails: its events are not left without a
    # result, and the text names the callback's exception, not the client's.
    setup = Setup(left=5.0)

    def on_done(outcome: ChunkOutcome) -> None:
        outcome.parts.clear()
        raise KeyError("the caller's bug")

    outcomes = setup.client.send([PIECE], on_done=on_done)
    assert [outcome.parts for outcome in outcomes] == [
        [Part((0,), "failed", error="the result could not be recorded (KeyError)")]
    ]
