"""Custom metric data in the served emulator: the official SDK, Cloud Eye's rules, faults by scope."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from tests.support.emulator_server import EmulatorServer


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def item(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "metric": {
            "namespace": "FORWARDER.EVENTS",
            "metric_name": "accepted",
            "dimensions": [{"name": "function", "value": "cloudeye-forwarder"}],
        },
        "ttl": 172800,
        "collect_time": now_ms() - 1_000,
        "value": 42,
        "unit": "count",
        "type": "int",
    }
    base.update(changes)
    return base


def event() -> dict[str, Any]:
    return {"event_name": "DiskFull", "event_source": "ops.Storage", "time": now_ms() - 1_000, "detail": {}}


def test_official_sdk_adds_metric_data_the_emulator_keeps(cloudeye: EmulatorServer) -> None:
    from huaweicloudsdkces.v1.model import (
        CreateMetricDataRequest,
        CreateMetricDataRequestBody,
        MetricInfo,
        MetricsDimension,
    )

    collected = now_ms() - 2_000
    body = [
        CreateMetricDataRequestBody(
            metric=MetricInfo(
                namespace="FORWARDER.EVENTS",
                metric_name=name,
                dimensions=[
                    MetricsDimension(name="function", value="fwd"),
                    MetricsDimension(name="trigger", value="kafka"),
                ],
            ),
            ttl=172800,
            collect_time=collected,
            value=value,
            unit=unit,
            type=kind,
        )
        for name, value, unit, kind in [("accepted", 7, "count", "int"), ("duration", 12.5, "ms", "float")]
    ]
    response = cloudeye.sdk_client().create_metric_data(CreateMetricDataRequest(body=body))
    assert response.status_code == 201
    stored = cloudeye.stored_metrics()
    assert [(m["metric"]["metric_name"], m["value"], m["unit"]) for m in stored] == [
        ("accepted", 7, "count"),
        ("duration", 12.5, "ms"),
    ]
    assert stored[0]["project_id"] == cloudeye.project_id and stored[0]["collect_time"] == collected
    assert stored[0]["metric"]["dimensions"][1] == {"name": "trigger", "value": "kafka"}
    assert cloudeye.stats()["metrics_stored"] == 2
    page = cloudeye.page().text
    assert "FORWARDER.EVENTS" in page and "duration" in page and "trigger=kafka" in page


def test_metric_data_must_be_signed(cloudeye: EmulatorServer) -> None:
    unsigned = cloudeye.post_metric_data([item()], sign=False)
    assert unsigned.status == 401 and unsigned.json()["error_code"] == "APIGW.0301"
    wrong_key = cloudeye.post_metric_data([item()], secret_key="not-the-key")
    assert wrong_key.status == 401
    assert cloudeye.stored_metrics() == []


def _without(path: str) -> dict[str, Any]:
    changed = item()
    *parents, last = path.split(".")
    target = changed
    for part in parents:
        target = target[part]
    del target[last]
    return changed


def _with_metric(**changes: Any) -> dict[str, Any]:
    changed = item()
    changed["metric"] = {**changed["metric"], **changes}
    return changed


@pytest.mark.parametrize(
    ("bad", "field", "reason"),
    [
        (_without("metric"), "metric", "is required"),
        (_without("ttl"), "ttl", "is required"),
        (_without("collect_time"), "collect_time", "is required"),
        (_without("value"), "value", "is required"),
        (_without("metric.namespace"), "metric.namespace", "is required"),
        (_without("metric.dimensions"), "metric.dimensions", "is required"),
        (_with_metric(namespace="SYS.ECS"), "metric.namespace", "reserved"),
        (_with_metric(namespace="forwarder"), "metric.namespace", "service.item"),
        (_with_metric(namespace="ab.events"), "metric.namespace", "service.item"),
        (_with_metric(metric_name="1st"), "metric.metric_name", "start with a letter"),
        (_with_metric(metric_name="a" * 97), "metric.metric_name", "1-96"),
        (_with_metric(dimensions=[]), "metric.dimensions", "1 to 4"),
        (
            _with_metric(dimensions=[{"name": f"d{i}", "value": "v"} for i in range(5)]),
            "metric.dimensions",
            "1 to 4",
        ),
        (_with_metric(dimensions=[{"name": "9lives", "value": "v"}]), "metric.dimensions[0].name", "1-32"),
        (_with_metric(dimensions=[{"name": "fn", "value": ""}]), "metric.dimensions[0].value", "1 to 256"),
        (_with_metric(dimensions=[{"name": "fn"}]), "metric.dimensions[0].value", "is required"),
        (item(ttl=0), "ttl", "1 to 604800"),
        (item(ttl=604801), "ttl", "1 to 604800"),
        (item(ttl="60"), "ttl", "whole number"),
        (item(collect_time=now_ms() - 3 * 86_400_000), "collect_time", "3 days"),
        (item(collect_time=now_ms() + 60 * 60_000), "collect_time", "10 minutes"),
        (item(collect_time="now"), "collect_time", "UNIX timestamp"),
        (item(value="42"), "value", "finite number"),
        (item(value=True), "value", "finite number"),
        (item(value=1.5, type="int"), "value", "whole number"),
        (item(type="double"), "type", "['int', 'float']"),
        (item(unit="u" * 33), "unit", "at most 32"),
        (item(extra=1), "extra", "not a field"),
    ],
)
def test_a_bad_item_refuses_the_request_naming_index_field_and_reason(
    cloudeye: EmulatorServer, bad: dict[str, Any], field: str, reason: str
) -> None:
    reply = cloudeye.post_metric_data([item(), bad])
    assert reply.status == 400, reply.text
    body = reply.json()
    assert body["error_code"] == "ces.0014"
    assert f"item [1] {field}: " in body["error_msg"] and reason in body["error_msg"]
    assert "item [0]" not in body["error_msg"]
    assert cloudeye.stored_metrics() == []


@pytest.mark.parametrize("body", [b"", b"{}", b"[]", b"[1,", b'{"metric": {}}'])
def test_a_body_that_is_not_a_list_of_items_is_refused(cloudeye: EmulatorServer, body: bytes) -> None:
    reply = cloudeye.post_metric_data(body)
    assert reply.status == 400 and reply.json()["error_code"] in ("ces.0001", "ces.0014")
    assert cloudeye.stored_metrics() == []


def test_edge_values_from_the_documentation_are_kept(cloudeye: EmulatorServer) -> None:
    edges = [
        item(ttl=1, unit="", type="float", value=0.25),
        item(ttl=604800, collect_time=now_ms() - 3 * 86_400_000 + 60_000),
        _with_metric(
            dimensions=[{"name": f"d{i}", "value": "v" * 256} for i in range(4)], metric_name="a" * 96
        ),
        _without("unit"),
        _without("type"),
    ]
    reply = cloudeye.post_metric_data(copy.deepcopy(edges))
    assert reply.status == 201, reply.text
    assert reply.body == b""
    assert len(cloudeye.stored_metrics()) == len(edges)


def test_a_fault_scoped_to_metric_data_leaves_events_alone(cloudeye: EmulatorServer) -> None:
    plan = cloudeye.set_faults(status=503, count=2, scope="metric-data")
    assert plan["faults"][0]["scope"] == "metric-data"
    assert cloudeye.post_events([event()]).status == 201
    refused = cloudeye.post_metric_data([item()])
    assert refused.status == 503 and refused.json()["error_code"] == "APIGW.0202"
    assert cloudeye.post_events([event()]).status == 201
    assert cloudeye.post_metric_data([item()]).status == 503
    assert cloudeye.post_metric_data([item()]).status == 201
    assert len(cloudeye.stored_metrics()) == 1 and len(cloudeye.stored_events()) == 2


def test_event_faults_leave_metric_data_alone_and_any_hits_both(cloudeye: EmulatorServer) -> None:
    cloudeye.set_faults(faults=[{"status": 500}, {"status": 429, "retry_after": 2, "scope": "any"}])
    assert cloudeye.post_metric_data([item()]).status == 429
    assert cloudeye.post_metric_data([item()]).status == 201
    assert cloudeye.post_events([event()]).status == 500
    assert cloudeye.post_events([event()]).status == 201


def test_an_unknown_fault_scope_is_refused(cloudeye: EmulatorServer) -> None:
    reply = cloudeye.request(
        "POST",
        "/_emulator/faults",
        body=b'{"status": 503, "scope": "metrics"}',
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 400 and "scope" in reply.json()["error_msg"]


def test_reset_forgets_metric_data(cloudeye: EmulatorServer) -> None:
    assert cloudeye.post_metric_data([item()]).status == 201
    cloudeye.reset()
    assert cloudeye.stored_metrics() == [] and cloudeye.stats()["metrics_stored"] == 0
