"""The forwarder's own figures: one signed metric-data request per invocation, best effort.

End to end through ``index.handler`` (and the served ``main.ingest``) against the served emulator,
which verifies the signature and keeps what it accepts; the rest are unit checks of the body and
the settings.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

import index
from forwarder import SettingsError, logs, metrics
from forwarder.queue_ingest import DeliveryError
from forwarder.settings import Settings
from tests.support.entry_helpers import FakeContext, kafka_batch, log_lines, make_event, make_events, now_ms
from tests.support.ingest_server import IngestServer
from tests.support.loopback import Answer, LoopbackServer

NAMESPACE = "FORWARDER.EVENTS"


class NamedContext(FakeContext):
    """FunctionGraph's context, with the function's name."""

    def __init__(self, name: str = "cloudeye-forwarder-prod", **options: Any) -> None:
        super().__init__(**options)
        self._name = name

    def getFunctionName(self) -> str:
        return self._name


@pytest.fixture
def to_cloudeye(to_cloudeye, monkeypatch):
    """With the namespace the forwarder publishes its figures in."""
    monkeypatch.setenv("FORWARDER_METRICS_NAMESPACE", NAMESPACE)
    return to_cloudeye


pytestmark = pytest.mark.usefixtures("fresh_connection_pool")


def mixed_batch() -> dict[str, Any]:
    """Four valid events and two rejects (a message that is not JSON, an event breaking a rule)."""
    moment = now_ms()
    good = make_events(4, now=moment, name="MetricsBatch")
    invalid = make_event(9, now=moment)
    invalid["detail"]["event_level"] = "Loud"
    return kafka_batch(json.dumps(good[:2]), "not JSON at all", json.dumps([good[2], invalid, good[3]]))


def by_name(stored: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["metric"]["metric_name"]: item for item in stored}


def metric_posts(cloudeye) -> list[dict[str, Any]]:
    return [r for r in cloudeye.requests_log() if r["path"].endswith("/metric-data")]


# --- must show: through index.handler, against the served emulator ------------------------------


def test_a_kafka_batch_ends_with_one_signed_metric_data_request_matching_its_counts(
    to_cloudeye, forwarder_logs
) -> None:
    # WHEN a Kafka batch with accepted and rejected events goes through the handler
    answer = index.handler(mixed_batch(), NamedContext(request_id="metrics-1"))
    assert (answer["received"], answer["accepted"], answer["rejected"], answer["failed"]) == (6, 4, 2, 0)
    # THEN Cloud Eye got exactly one metric-data request, and took it (it checks the signature)
    assert [r["status"] for r in metric_posts(to_cloudeye)] == [201]
    assert to_cloudeye.stats()["metric_posts"] == 1
    # AND its values are the invocation's counts and the duration of its log line
    (summary,) = log_lines(forwarder_logs.records, "invocation")
    stored = by_name(to_cloudeye.stored_metrics())
    assert {name: item["value"] for name, item in stored.items()} == {
        "received": 6,
        "accepted": 4,
        "rejected": 2,
        "failed": 0,
        "retries": answer["retries"],
        "throttled": answer["throttled"],
        "duration": summary["duration_ms"],
    }
    assert {name: (item["unit"], item["type"]) for name, item in stored.items()} == {
        **{name: ("count", "int") for name in metrics.COUNT_METRICS},
        "duration": ("ms", "float"),
    }
    # AND every metric carries the namespace, the function's name and the trigger
    for item in stored.values():
        assert item["metric"]["namespace"] == NAMESPACE
        assert item["metric"]["dimensions"] == [
            {"name": "function", "value": "cloudeye-forwarder-prod"},
            {"name": "trigger", "value": "kafka"},
        ]
        assert item["ttl"] == metrics.TTL_S and abs(item["collect_time"] - now_ms()) < 600_000
    assert log_lines(forwarder_logs.records, "metrics not sent") == []


def test_a_refused_metric_data_request_changes_nothing_but_one_warning(to_cloudeye, forwarder_logs) -> None:
    batch = mixed_batch()
    # GIVEN Cloud Eye refuses metric-data (and only that)
    to_cloudeye.set_faults(status=503, count=5, scope="metric-data")
    # WHEN the batch goes through the handler
    answer = index.handler(batch, NamedContext(request_id="metrics-2"))
    # THEN the invocation answers as it would have anyway, and the events are stored
    assert answer == {
        "trigger": "kafka",
        "received": 6,
        "accepted": 4,
        "rejected": 2,
        "failed": 0,
        "requests": 1,
        "retries": 0,
        "throttled": 0,
    }
    assert len(to_cloudeye.stored_events()) == 4
    # AND the metrics were tried once, not retried, and one warning says why
    assert [r["status"] for r in metric_posts(to_cloudeye)] == [503]
    assert to_cloudeye.stored_metrics() == []
    (warning,) = log_lines(forwarder_logs.records, "metrics not sent")
    assert warning["level"] == "WARNING" and warning["request_id"] == "metrics-2"
    assert warning["trigger"] == "kafka" and warning["namespace"] == NAMESPACE
    assert "503" in warning["error"]
    assert to_cloudeye.secret_key not in json.dumps(warning)


def test_a_failed_batch_still_reports_its_figures_then_raises(to_cloudeye, monkeypatch) -> None:
    # GIVEN Cloud Eye refuses every events request (but takes metric data)
    monkeypatch.setenv("CLOUDEYE_MAX_ATTEMPTS", "2")
    to_cloudeye.set_faults(status=500, count=100, scope="events")
    # WHEN a batch cannot be delivered, THEN the platform still gets its exception
    with pytest.raises(DeliveryError):
        index.handler(mixed_batch(), NamedContext())
    # AND the figures an alarm watches were sent before it
    values = {name: item["value"] for name, item in by_name(to_cloudeye.stored_metrics()).items()}
    assert (values["failed"], values["accepted"], values["rejected"], values["retries"]) == (4, 0, 2, 1)


def test_without_a_namespace_no_metrics_are_sent(cloudeye, monkeypatch, forwarder_logs) -> None:
    for name, value in cloudeye.forwarder_env().items():
        monkeypatch.setenv(name, value)
    answer = index.handler(mixed_batch(), NamedContext())
    assert answer["accepted"] == 4
    assert metric_posts(cloudeye) == [] and cloudeye.stats()["metric_posts"] == 0
    assert log_lines(forwarder_logs.records, "metrics not sent") == []


def test_api_gateway_and_the_http_entry_report_with_their_own_trigger(to_cloudeye, monkeypatch) -> None:
    monkeypatch.setenv("FORWARDER_FUNCTION_NAME", "forwarder-http")
    apig = {
        "httpMethod": "POST",
        "path": "/events",
        "headers": {"content-type": "application/json"},
        "body": json.dumps(make_events(2)),
        "isBase64Encoded": False,
        "requestContext": {"requestId": "apig-1"},
    }
    assert index.handler(apig, NamedContext())["statusCode"] == 201
    with IngestServer() as server:
        assert server.post(make_events(3)).status == 201
    accepted = [
        (m["metric"]["dimensions"][1]["value"], m["value"])
        for m in to_cloudeye.stored_metrics()
        if m["metric"]["metric_name"] == "accepted"
    ]
    assert accepted == [("apig", 2), ("http", 3)]
    names = {m["metric"]["dimensions"][0]["value"] for m in to_cloudeye.stored_metrics()}
    assert names == {"forwarder-http"}  # the setting wins over the platform's name


# --- best effort ----------------------------------------------------------------------------------


def summarised(counts: dict[str, Any] | None = None, **extra: Any) -> logs.Invocation:
    invocation = logs.Invocation("kafka", "req-best-effort")
    invocation.summary(counts or {"received": 3, "accepted": 3}, **extra)
    return invocation


def loopback_settings(url: str, **extra: str) -> Settings:
    env = {
        "CLOUDEYE_ENDPOINT": url,
        "HUAWEICLOUD_SDK_AK": "metrics-ak",
        "HUAWEICLOUD_SDK_SK": "metrics-sk",
        "HUAWEICLOUD_SDK_PROJECT_ID": "metrics-project",
        "FORWARDER_METRICS_NAMESPACE": NAMESPACE,
        **extra,
    }
    return Settings.from_env(environ=env)


def test_no_request_starts_once_the_deadline_has_passed(forwarder_logs) -> None:
    with LoopbackServer([Answer(201)]) as server:
        sent = metrics.publish(
            summarised(), lambda: loopback_settings(server.url), deadline=time.monotonic() - 0.01
        )
        assert sent is False and server.requests == []
    (warning,) = log_lines(forwarder_logs.records, "metrics not sent")
    assert "deadline" in warning["error"]


def test_a_slow_cloud_eye_is_given_up_on_at_the_deadline(forwarder_logs) -> None:
    with LoopbackServer([Answer(201, delay_s=3.0)]) as server:
        sent = metrics.publish(
            summarised(), lambda: loopback_settings(server.url), deadline=time.monotonic() + 0.3
        )
        assert sent is False and len(server.requests) == 1
    (warning,) = log_lines(forwarder_logs.records, "metrics not sent")
    assert "no whole answer within 0." in warning["error"]


def test_an_unreachable_cloud_eye_gives_one_warning_and_no_exception(forwarder_logs) -> None:
    with LoopbackServer() as server:
        url = server.url  # a port that is closed once the block ends
    assert metrics.publish(summarised(), lambda: loopback_settings(url)) is False
    (warning,) = log_lines(forwarder_logs.records, "metrics not sent")
    assert "could not be reached" in warning["error"]


def test_a_bug_while_sending_is_a_warning_naming_only_its_type(monkeypatch, forwarder_logs) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("metrics-sk should never be logged")

    monkeypatch.setattr(metrics, "metric_data", broken)
    with LoopbackServer() as server:
        assert metrics.publish(summarised(), lambda: loopback_settings(server.url)) is False
    (warning,) = log_lines(forwarder_logs.records, "metrics not sent")
    assert warning["error"] == "the request could not be sent (RuntimeError)"


def test_dry_runs_and_uncounted_invocations_send_nothing(forwarder_logs) -> None:
    with LoopbackServer() as server:
        settings = loopback_settings(server.url)
        assert metrics.publish(summarised(dry_run=True), lambda: settings) is False
        assert metrics.publish(logs.Invocation("http", "no-summary"), lambda: settings) is False
        assert metrics.publish(summarised(), lambda: settings) is True  # the counterpart
        assert len(server.requests) == 1
    assert log_lines(forwarder_logs.records, "metrics not sent") == []


def test_settings_that_cannot_be_built_are_left_to_the_invocation_to_report(forwarder_logs) -> None:
    def failing() -> Settings:
        raise SettingsError("HUAWEICLOUD_SDK_PROJECT_ID is not set")

    assert metrics.publish(summarised(), failing) is False
    assert log_lines(forwarder_logs.records, "metrics not sent") == []


# --- the body and the settings --------------------------------------------------------------------


def test_the_body_is_what_the_official_sdk_would_send() -> None:
    from huaweicloudsdkces.v1.model import CreateMetricDataRequestBody, MetricInfo, MetricsDimension

    figures = {"received": 5, "accepted": 3, "rejected": 1, "failed": 1, "retries": 2, "duration_ms": 41.26}
    body = metrics.metric_data(NAMESPACE, "fwd", "rocketmq", figures, 1_767_225_600_000)
    expected = [
        CreateMetricDataRequestBody(
            metric=MetricInfo(
                namespace=NAMESPACE,
                metric_name=name,
                dimensions=[
                    MetricsDimension(name="function", value="fwd"),
                    MetricsDimension(name="trigger", value="rocketmq"),
                ],
            ),
            ttl=604_800,
            collect_time=1_767_225_600_000,
            value=value,
            unit=unit,
            type=kind,
        ).to_dict()
        for name, value, unit, kind in [
            ("received", 5, "count", "int"),
            ("accepted", 3, "count", "int"),
            ("rejected", 1, "count", "int"),
            ("failed", 1, "count", "int"),
            ("retries", 2, "count", "int"),
            ("throttled", 0, "count", "int"),
            ("duration", 41.3, "ms", "float"),
        ]
    ]
    assert body == expected


@pytest.mark.parametrize("namespace", ["FORWARDER.EVENTS", "Ops_Team.fwd_01", "abc.def"])
def test_custom_namespaces_are_accepted(namespace: str) -> None:
    assert (
        Settings.from_env(environ={"FORWARDER_METRICS_NAMESPACE": namespace}).metrics_namespace == namespace
    )


@pytest.mark.parametrize(
    ("namespace", "problem"),
    [
        ("SYS.FORWARDER", "must not start with SYS."),
        ("sys.forwarder", "must not start with SYS."),
        ("AGT.EVENTS", "must not start with"),
        ("SRE.EVENTS", "must not start with"),
        ("FORWARDER", "service.item"),
        ("FW.EVENTS", "service.item"),
        ("1FWD.EVENTS", "service.item"),
        ("FWD.EVENTS.MORE", "service.item"),
        ("FWD.EVENT-S", "service.item"),
        ("FWD." + "E" * 33, "service.item"),
    ],
)
def test_a_namespace_cloud_eye_would_refuse_is_a_settings_error(namespace: str, problem: str) -> None:
    with pytest.raises(SettingsError, match="FORWARDER_METRICS_NAMESPACE") as caught:
        Settings.from_env(environ={"FORWARDER_METRICS_NAMESPACE": namespace})
    assert problem in str(caught.value)


def test_the_function_name_comes_from_the_setting_then_the_platform() -> None:
    env = {"FORWARDER_METRICS_NAMESPACE": NAMESPACE, "RUNTIME_FUNC_NAME": "from-runtime-env"}
    context = NamedContext("from-context")
    assert (
        Settings.from_env(environ={**env, "FORWARDER_FUNCTION_NAME": "mine"}, context=context).function_name
        == "mine"
    )
    assert Settings.from_env(environ=env, context=context).function_name == "from-context"
    assert Settings.from_env(environ=env, context=FakeContext()).function_name == "from-runtime-env"
    assert Settings.from_env(environ={}).function_name is None  # metrics then say DEFAULT_FUNCTION_NAME


def test_a_function_name_that_cannot_be_a_dimension_matters_only_with_metrics_on() -> None:
    env = {"FORWARDER_FUNCTION_NAME": "has spaces/and slashes"}
    assert Settings.from_env(environ=env).function_name == "has spaces/and slashes"
    with pytest.raises(SettingsError, match="FORWARDER_FUNCTION_NAME"):
        Settings.from_env(environ={**env, "FORWARDER_METRICS_NAMESPACE": NAMESPACE})
