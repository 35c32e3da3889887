"""Rendered Terraform JSON against the huaweicloud provider's own resource schemas.

The schemas under tests/data/terraform_schemas are copies of the provider's
`terraform providers schema -json` output for the FunctionGraph resources; the CreateTrigger field
list is tests/data/fgs_create_trigger_event_data.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from deploy.template import load_template
from deploy.terraform import render, write
from forwarder import triggers as forwarder_triggers
from forwarder.events import validate_events
from tests.support.fresh_process import run_command
from tests.support.template_variants import SHIPPED, WITH_METRICS, WITH_TIMER

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
# Terraform's own arguments of every resource block, which no provider schema lists.
META_ARGUMENTS = {"lifecycle", "depends_on", "count", "for_each", "provider"}


def _provider_schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((DATA / "terraform_schemas").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for provider in doc["provider_schemas"].values():
            for name, schema in provider["resource_schemas"].items():
                out[name] = schema["block"]
    return out


SCHEMAS = _provider_schemas()
CREATE_TRIGGER = json.loads((DATA / "fgs_create_trigger_event_data.json").read_text(encoding="utf-8"))
JSON_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict}
INTERPOLATED = re.compile(r"^\$\{.*\}$", re.DOTALL)


def render_text(tmp_path: Path, text: str) -> dict[str, Any]:
    path = tmp_path / "template.yaml"
    path.write_text(text, encoding="utf-8")
    return render(load_template(path))


SHARED_GATEWAY = SHIPPED.replace("    gateway: dedicated", "    gateway: shared").replace(
    "    instance_id: ${var.apig_instance_id}\n", ""
)
OBS_EVERYTHING = re.sub(
    r"  failure_topic_urn:\n    description: [^\n]*\n",
    "",
    SHIPPED.replace(
        "    source: zip\n    # obs_url: ${var.code_obs_url}", "    source: obs\n    obs_url: ${var.url}"
    )
    .replace(
        "    smn_topic_urn: ${var.failure_topic_urn}",
        "    obs:\n      bucket: ${var.bucket}\n      expires_days: 7",
    )
    .replace(
        "variables:\n", "variables:\n  url:\n    description: zip in OBS\n  bucket:\n    description: b\n"
    ),
)
NO_SASL_NO_VPC_NO_ASYNC = SHIPPED.replace(
    "    username: ${var.kafka_user}\n    password: ${var.kafka_password}\n", ""
).split("\nasync:")[0]
KAFKA_DISABLED = SHIPPED.replace("    enabled: true\n", "    enabled: false\n", 1)
VARIANTS = {
    "shipped": SHIPPED,
    "shared-gateway": SHARED_GATEWAY,
    "obs-code-and-destination": OBS_EVERYTHING,
    "no-sasl-no-async": NO_SASL_NO_VPC_NO_ASYNC,
    "kafka-disabled": KAFKA_DISABLED,
    "heartbeat-timer": WITH_TIMER,
    "metrics-and-alarms": WITH_METRICS,
}


# --- the provider schema check ------------------------------------------------------------------


def _value_fits(tf_type: Any, value: Any) -> bool:
    if isinstance(value, str) and INTERPOLATED.match(value):
        return True  # an expression: its type is Terraform's to check
    if tf_type == "string":
        return isinstance(value, str)
    if tf_type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tf_type == "bool":
        return isinstance(value, bool)
    if isinstance(tf_type, list) and tf_type[0] in ("list", "set"):
        return isinstance(value, list) and all(_value_fits(tf_type[1], item) for item in value)
    if isinstance(tf_type, list) and tf_type[0] == "map":
        return isinstance(value, dict) and all(_value_fits(tf_type[1], item) for item in value.values())
    raise AssertionError(f"type {tf_type!r} not handled by this test")


def schema_violations(block: dict[str, Any], body: dict[str, Any], where: str) -> list[str]:
    """Everything in `body` the provider's block schema would reject."""
    found = []
    attributes = block.get("attributes", {})
    blocks = block.get("block_types", {})
    for key, value in body.items():
        if key == "//":
            continue
        if key == "lifecycle" and where.count(".") == 1:
            for name in value.get("ignore_changes", []):
                if name not in attributes:
                    found.append(f"{where}.lifecycle.ignore_changes: no attribute {name!r}")
            continue
        if key in META_ARGUMENTS and where.count(".") == 1:
            continue
        if key in attributes:
            attr = attributes[key]
            if not (attr.get("required") or attr.get("optional")):
                found.append(f"{where}.{key}: computed only, cannot be set")
            if not _value_fits(attr["type"], value):
                found.append(f"{where}.{key}: {value!r} is not a {attr['type']}")
        elif key in blocks:
            nested = blocks[key]
            items = value if isinstance(value, list) else [value]
            if "max_items" in nested and len(items) > nested["max_items"]:
                found.append(f"{where}.{key}: more than {nested['max_items']} blocks")
            for index, item in enumerate(items):
                found += schema_violations(nested["block"], item, f"{where}.{key}[{index}]")
        else:
            found.append(f"{where}.{key}: no such attribute or block")
    for key, attr in attributes.items():
        if attr.get("required") and key not in body:
            found.append(f"{where}.{key}: required attribute missing")
    for key, nested in blocks.items():
        if nested.get("min_items", 0) > 0 and key not in body:
            found.append(f"{where}.{key}: required block missing")
    return found


def references(doc: Any) -> set[str]:
    text = json.dumps(doc)
    return set(
        re.findall(r"\b(?:var|local)\.[A-Za-z_][A-Za-z0-9_]*|\bhuaweicloud_[a-z_]+\.[a-z_]+\.[a-z_]+", text)
    )


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_resource_and_attribute_is_in_the_provider_schema(tmp_path: Path, name: str) -> None:
    doc = render_text(tmp_path, VARIANTS[name])
    assert set(doc) <= {"//", "terraform", "provider", "variable", "locals", "resource", "output"}
    violations = []
    for resource_type, instances in doc["resource"].items():
        assert resource_type in SCHEMAS, f"unknown resource type {resource_type}"
        for local_name, body in instances.items():
            violations += schema_violations(SCHEMAS[resource_type], body, f"{resource_type}.{local_name}")
    assert violations == []


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_reference_resolves(tmp_path: Path, name: str) -> None:
    doc = render_text(tmp_path, VARIANTS[name])
    for ref in references(doc):
        kind, _, rest = ref.partition(".")
        if kind == "var":
            assert rest in doc["variable"], ref
        elif kind == "local":
            assert rest in doc["locals"], ref
        else:
            local_name, attribute = rest.split(".")
            assert local_name in doc["resource"][kind], ref
            assert attribute in SCHEMAS[kind]["attributes"], ref


def test_shipped_template_renders_the_four_resource_types(tmp_path: Path) -> None:
    doc = render_text(tmp_path, SHIPPED)
    assert sorted(doc["resource"]) == [
        "huaweicloud_fgs_async_invoke_configuration",
        "huaweicloud_fgs_function",
        "huaweicloud_fgs_function_trigger",
        "huaweicloud_fgs_function_trigger_status_action",
    ]
    fn = doc["resource"]["huaweicloud_fgs_function"]["forwarder"]
    assert fn["runtime"] == "Python3.10"
    assert fn["handler"] == "index.handler"
    assert fn["code_type"] == "zip"
    assert fn["code_filename"] == "cloudeye-event-forwarder.zip"
    assert fn["func_code"] == '${filebase64("${path.module}/cloudeye-event-forwarder.zip")}'
    assert doc["provider"]["huaweicloud"] == {"region": "${var.region}"}
    assert doc["terraform"]["required_providers"]["huaweicloud"]["source"] == "huaweicloud/huaweicloud"
    triggers = doc["resource"]["huaweicloud_fgs_function_trigger"]
    assert {t["type"] for t in triggers.values()} == {"DEDICATEDGATEWAY", "KAFKA"}


@pytest.mark.parametrize(
    ("agency", "rendered"),
    [
        ("${var.agency_name}", "${var.agency_name}"),
        ("cloudeye-forwarder-agency", "cloudeye-forwarder-agency"),
    ],
)
def test_the_agency_reaches_the_function(tmp_path: Path, agency: str, rendered: str) -> None:
    # Without its agency the function has no credentials at all: the provider cannot tell.
    text = SHIPPED.replace("  agency: ${var.agency_name}", f"  agency: {agency}")
    fn = render_text(tmp_path, text)["resource"]["huaweicloud_fgs_function"]["forwarder"]
    assert fn["agency"] == rendered


# --- trigger status and drift ---------------------------------------------------------------------


def test_kafka_trigger_is_active_after_the_first_apply(tmp_path: Path) -> None:
    # FunctionGraph creates Kafka triggers DISABLED whatever the create call says; the status action
    # switches it in the same apply.
    resources = render_text(tmp_path, SHIPPED)["resource"]
    trigger = resources["huaweicloud_fgs_function_trigger"]["kafka"]
    action = resources["huaweicloud_fgs_function_trigger_status_action"]["kafka"]
    assert action == {
        "function_urn": "${huaweicloud_fgs_function.forwarder.urn}",
        "trigger_id": "${huaweicloud_fgs_function_trigger.kafka.id}",
        "trigger_type_code": "KAFKA",
        "trigger_status": "ACTIVE",
        "event_data": trigger["event_data"],
        "lifecycle": {"ignore_changes": ["event_data"]},
    }
    # the action owns the status: the trigger says nothing the create call would ignore, and a
    # status changed by the action is no drift of the trigger
    assert "status" not in trigger
    assert trigger["lifecycle"] == {"ignore_changes": ["event_data", "status"]}
    # the HTTP trigger is created ACTIVE and has no switch
    assert set(resources["huaweicloud_fgs_function_trigger_status_action"]) == {"kafka"}


def test_kafka_enabled_false_renders_no_active_status(tmp_path: Path) -> None:
    resources = render_text(tmp_path, KAFKA_DISABLED)["resource"]
    kafka = {
        "trigger": resources["huaweicloud_fgs_function_trigger"]["kafka"],
        "action": resources["huaweicloud_fgs_function_trigger_status_action"]["kafka"],
    }
    assert kafka["action"]["trigger_status"] == "DISABLED"
    assert "ACTIVE" not in json.dumps(kafka)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_trigger_and_status_action_ignores_event_data_drift(tmp_path: Path, name: str) -> None:
    resources = render_text(tmp_path, VARIANTS[name])["resource"]
    bodies = [
        *resources["huaweicloud_fgs_function_trigger"].values(),
        *resources.get("huaweicloud_fgs_function_trigger_status_action", {}).values(),
    ]
    assert bodies
    for body in bodies:
        assert body["lifecycle"]["ignore_changes"][0] == "event_data"
    assert resources["huaweicloud_fgs_function_trigger"]["http"]["lifecycle"] == {
        "ignore_changes": ["event_data"]
    }


# --- the heartbeat timer ----------------------------------------------------------------------------


def test_heartbeat_timer_renders_a_timer_trigger_with_its_event(tmp_path: Path) -> None:
    resources = render_text(tmp_path, WITH_TIMER)["resource"]
    trigger = resources["huaweicloud_fgs_function_trigger"]["timer"]
    assert trigger["type"] == "TIMER"
    data = json.loads(trigger["event_data"])
    check_event_data("TIMER", data)
    assert (data["name"], data["schedule_type"], data["schedule"]) == ("forwarder_heartbeat", "Rate", "5m")
    assert resources["huaweicloud_fgs_function_trigger_status_action"]["timer"]["trigger_status"] == "ACTIVE"
    # WHEN the timer fires, FunctionGraph hands user_event to index.handler: it is a valid event
    fired = {
        "version": "v1.0",
        "time": datetime.now(timezone.utc).isoformat(),
        "trigger_type": "TIMER",
        "trigger_name": data["name"],
        "user_event": data["user_event"],
    }
    assert forwarder_triggers.detect(fired) is forwarder_triggers.Trigger.TIMER
    (candidate,) = forwarder_triggers.queue_candidates(fired, forwarder_triggers.Trigger.TIMER)
    outcome = validate_events([candidate.value])
    assert outcome.errors == {}
    assert outcome.valid[0][1]["event_name"] == "ForwarderHeartbeat"


def test_a_disabled_timer_is_switched_off_by_its_status_action(tmp_path: Path) -> None:
    text = WITH_TIMER.replace(
        "    # Timers are created ACTIVE; false switches it off (also through a status action).\n"
        "    enabled: true",
        "    enabled: false",
    )
    action = render_text(tmp_path, text)["resource"]["huaweicloud_fgs_function_trigger_status_action"]
    assert (action["timer"]["trigger_status"], action["kafka"]["trigger_status"]) == ("DISABLED", "ACTIVE")


# --- environment derived from the template --------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout_ms", "deadline"), [(30000, "27"), (60000, "57"), (5000, "2.5"), (1, "0.0005")]
)
def test_http_deadline_is_a_little_less_than_the_gateway_timeout(
    tmp_path: Path, timeout_ms: int, deadline: str
) -> None:
    text = SHIPPED.replace("    timeout_ms: 30000", f"    timeout_ms: {timeout_ms}")
    doc = render_text(tmp_path, text)
    assert doc["locals"]["user_data"]["FORWARDER_HTTP_DEADLINE_S"] == deadline


def test_an_explicit_http_deadline_is_kept_and_none_without_http(tmp_path: Path) -> None:
    text = SHIPPED.replace(
        "    CLOUDEYE_TIMEOUT_S: 10", "    CLOUDEYE_TIMEOUT_S: 10\n    FORWARDER_HTTP_DEADLINE_S: 12"
    )
    assert render_text(tmp_path, text)["locals"]["user_data"]["FORWARDER_HTTP_DEADLINE_S"] == "12"
    without_http = re.sub(r"\n  http:\n(    .*\n)+", "\n", SHIPPED)
    user_data = render_text(tmp_path, without_http)["locals"]["user_data"]
    assert "FORWARDER_HTTP_DEADLINE_S" not in user_data


# --- the forwarder's own metrics and their alarms ---------------------------------------------------


def test_metrics_namespace_and_function_name_reach_the_function(tmp_path: Path) -> None:
    user_data = render_text(tmp_path, WITH_METRICS)["locals"]["user_data"]
    assert user_data["FORWARDER_METRICS_NAMESPACE"] == "FORWARDER.EVENTS"
    assert user_data["FORWARDER_FUNCTION_NAME"] == "cloudeye-event-forwarder"
    assert "FORWARDER_METRICS_NAMESPACE" not in render_text(tmp_path, SHIPPED)["locals"]["user_data"]


def test_alarm_rules_per_trigger_on_failed_and_rejected(tmp_path: Path) -> None:
    rules = render_text(tmp_path, WITH_METRICS)["resource"]["huaweicloud_ces_alarmrule"]
    assert sorted(rules) == [
        "http_failed",
        "http_rejected",
        "kafka_failed",
        "kafka_rejected",
        "timer_failed",
        "timer_rejected",
    ]
    for key, trigger in (("http", "apig"), ("kafka", "kafka"), ("timer", "timer")):
        for metric, threshold in (("failed", 0), ("rejected", 10)):
            rule = rules[f"{key}_{metric}"]
            assert rule["alarm_name"] == f"cloudeye-event-forwarder-{trigger}-{metric}"
            assert rule["metric"] == [{"namespace": "FORWARDER.EVENTS"}]
            assert rule["resources"] == [
                {
                    "dimensions": [
                        {"name": "function", "value": "cloudeye-event-forwarder"},
                        {"name": "trigger", "value": trigger},
                    ]
                }
            ]
            (condition,) = rule["condition"]
            # more than the threshold summed over one 5-minute period, a major alarm
            assert condition == dict(
                metric_name=metric, period=300, filter="sum", comparison_operator=">", value=threshold,
                count=1, unit="count", alarm_level=2,
            )  # fmt: skip
            assert rule["alarm_actions"] == [
                {"type": "notification", "notification_list": ["${var.alarm_topic_urn}"]}
            ]
            assert rule["alarm_action_enabled"] is True


def test_alarm_dimension_values_are_the_forwarders_trigger_names(tmp_path: Path) -> None:
    rules = render_text(tmp_path, WITH_METRICS)["resource"]["huaweicloud_ces_alarmrule"]
    values = {rule["resources"][0]["dimensions"][1]["value"] for rule in rules.values()}
    assert values <= {t.value for t in forwarder_triggers.Trigger}


def test_alarm_threshold_and_period_follow_the_template(tmp_path: Path) -> None:
    text = WITH_METRICS.replace("    rejected_above: 10", "    rejected_above: 250").replace(
        "    period_s: 300", "    period_s: 3600"
    )
    rules = render_text(tmp_path, text)["resource"]["huaweicloud_ces_alarmrule"]
    assert rules["kafka_rejected"]["condition"][0]["value"] == 250
    assert rules["kafka_failed"]["condition"][0]["value"] == 0
    assert {rule["condition"][0]["period"] for rule in rules.values()} == {3600}


def test_metrics_without_alarms_render_no_alarm_rule(tmp_path: Path) -> None:
    text = re.sub(r"\n  alarms:\n(    .*\n)+", "\n", WITH_METRICS)
    doc = render_text(tmp_path, text)
    assert "huaweicloud_ces_alarmrule" not in doc["resource"]
    assert doc["locals"]["user_data"]["FORWARDER_METRICS_NAMESPACE"] == "FORWARDER.EVENTS"


# --- event_data is CreateTrigger's body -----------------------------------------------------------


def check_event_data(trigger_type: str, data: dict[str, Any]) -> None:
    spec = CREATE_TRIGGER["trigger_types"][trigger_type]
    required = dict(spec.get("required", {}))
    if "same_as" in spec:
        base = CREATE_TRIGGER["trigger_types"][spec["same_as"]]
        required = {**base["required"], **spec["also_required"]}
        spec = base
    known = {**required, **spec.get("optional", {})}
    assert set(required) <= set(data), f"missing {set(required) - set(data)}"
    assert set(data) <= set(known), f"not CreateTrigger fields: {set(data) - set(known)}"
    for key, value in data.items():
        if isinstance(value, str) and "${" in value:
            continue  # filled in by Terraform
        assert isinstance(value, JSON_TYPES[known[key]]), (key, value)
    for key, allowed in spec.get("enums", {}).items():
        assert data[key] in allowed, (key, data[key])
    for key, (low, high) in spec.get("ranges", {}).items():
        assert low <= data[key] <= high, (key, data[key])


def test_kafka_event_data_decodes_to_create_trigger_fields(tmp_path: Path) -> None:
    trigger = render_text(tmp_path, SHIPPED)["resource"]["huaweicloud_fgs_function_trigger"]["kafka"]
    assert trigger["type"] == "KAFKA"
    data = json.loads(trigger["event_data"])
    check_event_data("KAFKA", data)
    assert data["batch_size"] == 100
    assert data["topic_ids"] == ["${local.json_escaped.kafka_topic_id}"]
    assert data["kafka_password"] == "${local.json_escaped.kafka_password}"
    assert data["kafka_ssl_enable"] is False


@pytest.mark.parametrize(
    ("name", "trigger_type"), [("shipped", "DEDICATEDGATEWAY"), ("shared-gateway", "APIG")]
)
def test_apig_event_data_decodes_to_create_trigger_fields(
    tmp_path: Path, name: str, trigger_type: str
) -> None:
    trigger = render_text(tmp_path, VARIANTS[name])["resource"]["huaweicloud_fgs_function_trigger"]["http"]
    assert trigger["type"] == trigger_type
    data = json.loads(trigger["event_data"])
    check_event_data(trigger_type, data)
    assert data["path"] == "/cloudeye/events"
    assert data["req_method"] == "POST"
    assert (data["auth"], data["protocol"], data["type"], data["match_mode"]) == (
        "NONE",
        "HTTPS",
        1,
        "NORMAL",
    )
    func_info = CREATE_TRIGGER["apig_func_info"]
    assert set(func_info["required"]) <= set(data["func_info"])
    assert set(data["func_info"]) <= set(func_info["required"]) | set(func_info["optional"])
    assert 1 <= data["func_info"]["timeout"] <= 60000


@pytest.mark.parametrize(("name", "destination"), [("shipped", "SMN"), ("obs-code-and-destination", "OBS")])
def test_async_failure_destination(tmp_path: Path, name: str, destination: str) -> None:
    config = render_text(tmp_path, VARIANTS[name])["resource"]["huaweicloud_fgs_async_invoke_configuration"]
    (block,) = config["forwarder"]["on_failure"]
    assert block["destination"] == destination
    param = json.loads(block["param"])
    assert set(param) == set(CREATE_TRIGGER["async_destinations"][destination])
    assert config["forwarder"]["max_async_retry_attempts"] == 2


def test_environment_and_secrets(tmp_path: Path) -> None:
    doc = render_text(tmp_path, SHIPPED)
    fn = doc["resource"]["huaweicloud_fgs_function"]["forwarder"]
    assert fn["user_data"] == "${jsonencode(local.user_data)}"
    assert fn["encrypted_user_data"] == "${jsonencode(local.encrypted_user_data)}"
    assert doc["locals"]["user_data"]["CLOUDEYE_MAX_CONCURRENCY"] == "8"
    assert "FORWARDER_INGEST_TOKEN" not in doc["locals"]["user_data"]
    assert doc["locals"]["encrypted_user_data"] == {"FORWARDER_INGEST_TOKEN": "${var.ingest_token}"}
    assert doc["variable"]["ingest_token"]["sensitive"] is True
    assert doc["variable"]["kafka_password"]["sensitive"] is True
    assert "default" not in doc["variable"]["ingest_token"]


def test_obs_code_source(tmp_path: Path) -> None:
    fn = render_text(tmp_path, OBS_EVERYTHING)["resource"]["huaweicloud_fgs_function"]["forwarder"]
    assert (fn["code_type"], fn["code_url"]) == ("obs", "${var.url}")
    assert "func_code" not in fn


def test_write_is_atomic_and_stable(tmp_path: Path) -> None:
    doc = render_text(tmp_path, SHIPPED)
    target = write(doc, tmp_path / "out")
    first = target.read_bytes()
    write(doc, tmp_path / "out")
    assert target.read_bytes() == first
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["main.tf.json"]


# --- Terraform itself evaluates what we wrote (when it is installed) ------------------------------


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not on PATH")
def test_terraform_evaluates_event_data_to_json_even_for_awkward_secrets(tmp_path: Path) -> None:
    # GIVEN the rendered variables, locals and event_data, without the provider (not reachable here)
    doc = render_text(tmp_path, WITH_METRICS)
    triggers = doc["resource"]["huaweicloud_fgs_function_trigger"]
    probe = {
        "variable": doc["variable"],
        "locals": doc["locals"],
        "output": {
            "kafka": {"value": triggers["kafka"]["event_data"], "sensitive": True},
            "http": {"value": triggers["http"]["event_data"]},
            "timer": {"value": triggers["timer"]["event_data"]},
            "user_data": {"value": "${jsonencode(local.user_data)}"},
        },
    }
    workdir = tmp_path / "probe"
    workdir.mkdir()
    (workdir / "main.tf.json").write_text(json.dumps(probe), encoding="utf-8")
    password = 'p"a\\ss %{x} ${y} \u00e9'
    env = {
        **os.environ,
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_CLI_CONFIG_FILE": os.devnull,
        **{f"TF_VAR_{name}": f"{name}-value" for name in doc["variable"] if name != "region"},
        "TF_VAR_kafka_password": password,
    }
    # WHEN terraform applies it (no resources: nothing leaves this machine)
    for cmd in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        proc = run_command(["terraform", *cmd], cwd=workdir, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run_command(["terraform", "output", "-json"], cwd=workdir, env=env, timeout=60, check=True)
    outputs = json.loads(proc.stdout)
    # THEN every event_data is valid JSON with the values in place, the password intact and sensitive
    kafka = json.loads(outputs["kafka"]["value"])
    assert outputs["kafka"]["sensitive"] is True
    assert kafka["kafka_password"] == password
    assert kafka["topic_ids"] == ["kafka_topic_id-value"]
    check_event_data("KAFKA", kafka)
    http = json.loads(outputs["http"]["value"])
    assert http["group_id"] == "apig_group_id-value"
    check_event_data("DEDICATEDGATEWAY", http)
    user_data = json.loads(outputs["user_data"]["value"])
    assert user_data["CLOUDEYE_REGION"] == "ap-southeast-1"
    assert user_data["FORWARDER_HTTP_DEADLINE_S"] == "27"
    timer = json.loads(outputs["timer"]["value"])
    check_event_data("TIMER", timer)
    assert json.loads(timer["user_event"])["event_name"] == "ForwarderHeartbeat"


def test_the_schema_check_itself_catches_mistakes() -> None:
    body = {"name": "f", "region": "r", "memory_size": "256", "no_such": 1, "custom_image": [{}, {}]}
    found = schema_violations(SCHEMAS["huaweicloud_fgs_function"], body, "fn")
    assert "fn.region: computed only, cannot be set" in found
    assert "fn.memory_size: '256' is not a number" in found
    assert "fn.no_such: no such attribute or block" in found
    assert "fn.custom_image: more than 1 blocks" in found
    assert "fn.custom_image[0].url: required attribute missing" in found
    assert "fn.runtime: required attribute missing" in found
    trigger = {"function_urn": "u", "type": "KAFKA", "event_data": "{}"}
    trigger["lifecycle"] = {"ignore_changes": ["data"]}
    found = schema_violations(SCHEMAS["huaweicloud_fgs_function_trigger"], trigger, "trigger.kafka")
    assert found == ["trigger.kafka.lifecycle.ignore_changes: no attribute 'data'"]
