"""Seeded fault injection end to end.

Kafka batches go through ``index.handler`` (called again whenever it raises, as FunctionGraph
redelivers) and HTTP batches through the served functions-framework entry (the failed events
resent, as a caller would), while the emulator answers a seeded random schedule of 429 (with and
without Retry-After), 500, 502, 503, 504, slow answers past the 0.3 s read timeout, and dropped
connections (with and without the events stored first). Replay a run with ``RELIABILITY_SEED``.
"""

from __future__ import annotations

import random
import time

import pytest

import index
from forwarder.queue_ingest import DeliveryError
from tests.reliability.harness import (
    FAULTS,
    FaultRun,
    FaultRunConfig,
    RunningContext,
    WireSpy,
    distinctive_credentials,
    environment,
    forwarder_env,
    identity,
    kafka_batch,
    quick_backoff,
    seed_from_env,
    wait_until_idle,
)

SEED = seed_from_env()


def describe(figures) -> str:
    shown = {k: v for k, v in vars(figures).items() if k != "problems"}
    return f"seed {figures.seed} (replay with RELIABILITY_SEED={figures.seed}): {shown}"


@pytest.mark.slow
def test_seeded_faults_lose_nothing_duplicate_nothing_send_nothing_invalid(cloudeye, ingest) -> None:
    # GIVEN 40 batches of 500 valid events (20 Kafka, 20 HTTP) with invalid events and unreadable
    # messages mixed in, and a fault schedule drawn from the seed for every invocation
    config = FaultRunConfig(seed=SEED)
    # WHEN they go through both entries until each batch is delivered
    figures = FaultRun(cloudeye, ingest, config).run()

    # THEN every promise held (each problem names the batch and the invariant it broke)
    assert figures.problems == [], describe(figures)
    assert figures.sent["kafka"] + figures.sent["http"] >= 20_000
    assert min(figures.sent["kafka"], figures.sent["http"]) >= 10_000
    assert (figures.lost, figures.duplicated, figures.invalid_sent, figures.crashes) == (0, 0, 0, 0)
    assert figures.stored == figures.valid == figures.accepted
    assert figures.rejected == figures.invalid > 0
    # AND the run really exercised what it claims: every fault kind, resends Cloud Eye recognised
    # as duplicates, redeliveries through both entries, retries within CLOUDEYE_MAX_ATTEMPTS
    assert set(figures.faults) == set(FAULTS), describe(figures)
    assert figures.cloud_eye_duplicates > 0
    assert figures.redelivered_batches["kafka"] > 0 and figures.redelivered_batches["http"] > 0
    assert figures.max_posts_per_request >= config.max_attempts
    assert figures.texts_scanned > 100


def test_iam_token_credentials_under_faults_leak_nothing(cloudeye, ingest) -> None:
    # The same run, smaller, with CLOUDEYE_AUTH_TOKEN as the only credential (X-Auth-Token).
    config = FaultRunConfig(seed=SEED + 1, kafka_batches=3, http_batches=3, auth_token_only=True)
    figures = FaultRun(cloudeye, ingest, config).run()
    assert figures.problems == [], describe(figures)
    assert figures.stored == figures.valid == 3_000


def test_the_context_deadline_bounds_retries_and_redelivery_completes(cloudeye) -> None:
    # GIVEN Cloud Eye answering every post later than the 0.3 s read timeout (storing the events
    # anyway), up to 10 attempts allowed, and 900 ms left on the FunctionGraph context
    rng = random.Random(SEED)
    payload, valid, invalid, unreadable = kafka_batch(rng, "dl", 150, 0.02)
    env = forwarder_env(cloudeye.base_url, CLOUDEYE_TIMEOUT_S="0.3", CLOUDEYE_MAX_ATTEMPTS="10")
    spy = WireSpy()
    with distinctive_credentials(cloudeye), environment(env), quick_backoff(), spy.installed():
        cloudeye.set_faults(faults=[{"kind": "slow", "delay_ms": 450}] * 40)
        context = RunningContext("deadline-1", 900)
        # WHEN the batch arrives, THEN the handler gives up in time and asks for a redelivery
        with pytest.raises(DeliveryError, match="out of time"):
            index.handler(payload, context)
        elapsed = time.monotonic() - context.created
        first = list(spy.posts)
        # WHEN Cloud Eye recovers and the platform redelivers, THEN everything is stored once
        cloudeye.clear_faults()
        answer = index.handler(payload, RunningContext("deadline-2", 10_000))
        wait_until_idle(cloudeye)
    assert elapsed <= 0.9
    assert first and all(post.at <= context.latest_attempt_start() + 0.02 for post in first)
    assert len(first) < 2 * 10  # two requests: stopped by the clock, long before 10 attempts each
    assert (answer["accepted"], answer["rejected"]) == (150, len(invalid) + unreadable)
    stored = [item["event"] for item in cloudeye.stored_events()]
    assert sorted(identity(event) for event in stored) == sorted(identity(event) for event in valid)
