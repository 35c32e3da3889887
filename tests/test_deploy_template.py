"""template.yaml validation: every bad field is named with its line, and nothing is written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.template import TemplateError, load_schema, load_template
from tests.support.template_variants import WITH_METRICS

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
SHIPPED = TEMPLATE.read_text(encoding="utf-8")


def variant(tmp_path: Path, old: str, new: str, *, count: int = 1) -> Path:
    """A copy of the shipped template with one text replacement (which must apply)."""
    assert SHIPPED.count(old) >= count, f"{old!r} not in template.yaml"
    path = tmp_path / "template.yaml"
    path.write_text(SHIPPED.replace(old, new, count), encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not found in {path}")


def problems(path: Path) -> list[str]:
    with pytest.raises(TemplateError) as info:
        load_template(path)
    return [p.render("template.yaml") for p in info.value.problems]


def problem_for(path: Path, field: str) -> str:
    """The first problem reported for ``field``."""
    found = problems(path)
    matching = [p for p in found if f": {field}: " in p]
    assert matching, found
    return matching[0]


def test_schema_is_a_valid_json_schema() -> None:
    from jsonschema import Draft202012Validator

    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"region", "function"} <= set(schema["required"])


def test_shipped_template_is_valid() -> None:
    template = load_template(TEMPLATE)
    assert template.function["runtime"] == "Python3.10"
    assert template.function["handler"] == "index.handler"
    assert template.warnings == []


def test_defaults_are_filled_in(tmp_path: Path) -> None:
    path = variant(tmp_path, "    match: exact\n", "")
    template = load_template(path)
    assert template.data["triggers"]["http"]["match"] == "exact"
    assert template.variables["agency_name"]["type"] == "string"
    assert template.variables["agency_name"]["sensitive"] is False


# GIVEN one mistake at a known line, WHEN the template is loaded, THEN the error names field and line.
@pytest.mark.parametrize(
    ("old", "new", "needle", "field", "words"),
    [
        (
            "  memory: 256",
            "  memory: 256\n  memroy: 256",
            "memroy:",
            "function.memroy",
            "unknown field (did you mean 'memory'?)",
        ),
        (
            "  timeout: 60",
            "  timeout: sixty",
            "timeout: sixty",
            "function.timeout",
            "is not of type 'integer'",
        ),
        (
            "  runtime: Python3.10",
            "  runtime: Python3.9",
            "runtime: Python3.9",
            "function.runtime",
            "'Python3.9' is not one of: Python3.10, Python3.12",
        ),
        (
            "    batch_size: 100",
            "    batch_size: 5000",
            "batch_size: 5000",
            "triggers.kafka.batch_size",
            "5000 is greater than the maximum of 1000",
        ),
        (
            "    auth: NONE",
            "    auth: OPEN",
            "auth: OPEN",
            "triggers.http.auth",
            "is not one of: IAM, APP, NONE",
        ),
        (
            "  handler: index.handler",
            "  handler: main.ingest",
            "handler: main.ingest",
            "function.handler",
            "must be 'index.handler'",
        ),
    ],
)
def test_one_bad_field_is_named_with_its_line(
    tmp_path: Path, old: str, new: str, needle: str, field: str, words: str
) -> None:
    path = variant(tmp_path, old, new)
    found = problems(path)
    assert found == [f"template.yaml:{line_of(path, needle)}: {field}: {found[0].split(': ', 2)[2]}"]
    assert words in found[0]


def test_missing_required_field_points_at_its_parent(tmp_path: Path) -> None:
    path = variant(tmp_path, "  agency: ${var.agency_name}\n", "")
    assert problems(path) == [
        f"template.yaml:{line_of(path, 'function:')}: function.agency: missing required field"
    ]


def test_all_problems_are_reported_in_line_order(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        SHIPPED.replace("  runtime: Python3.10", "  runtime: python3.10").replace(
            "  memory: 256", "  memory: 300"
        ),
        encoding="utf-8",
    )
    lines = [int(re.match(r"template\.yaml:(\d+):", p).group(1)) for p in problems(path)]
    assert len(lines) == 2
    assert lines == sorted(lines)


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        (
            "    FORWARDER_INGEST_TOKEN: ${var.ingest_token}",
            "    FORWARDER_INGEST_TOKEN: hunter2",
            "function.secrets.FORWARDER_INGEST_TOKEN",
            "is not a ${var.NAME} reference",
        ),
        (
            "    CLOUDEYE_TIMEOUT_S: 10",
            "    CLOUDEYE_TIMEOUT_S: 10\n    FORWARDER_INGEST_TOKEN: hunter2",
            "function.environment.FORWARDER_INGEST_TOKEN",
            "looks like a secret",
        ),
        (
            "    CLOUDEYE_TIMEOUT_S: 10",
            "    CLOUDEYE_TIMEOUT_S: 10\n    COPY_TOKEN: ${var.ingest_token}",
            "function.environment.COPY_TOKEN",
            "looks like a secret",
        ),
        (
            "    CLOUDEYE_TIMEOUT_S: 10",
            "    CLOUDEYE_TIMEOUT_S: 10\n    COPY: ${var.kafka_password}",
            "function.environment.COPY",
            "references sensitive variable 'kafka_password'",
        ),
        (
            "    description: SASL password of the Kafka user.\n    sensitive: true",
            "    description: SASL password of the Kafka user.",
            "triggers.kafka.password",
            "must be declared with sensitive: true",
        ),
        (
            "(FORWARDER_INGEST_TOKEN).\n    sensitive: true",
            "(FORWARDER_INGEST_TOKEN).\n    sensitive: true\n    default: hunter2",
            "variables.ingest_token.default",
            "must not have a default",
        ),
        (
            "  agency: ${var.agency_name}",
            "  agency: ${var.agency}",
            "function.agency",
            "undeclared variable 'agency'",
        ),
        (
            "    CLOUDEYE_REGION: ${var.region}",
            "    CLOUDEYE_REGION: ${upper(var.region)}",
            "function.environment.CLOUDEYE_REGION",
            "only ${var.NAME} references are allowed",
        ),
        (
            "    instance_id: ${var.apig_instance_id}\n",
            "",
            "triggers.http.instance_id",
            "missing required field",
        ),
        (
            "  vpc:\n    vpc_id: ${var.vpc_id}\n    subnet_id: ${var.subnet_id}\n",
            "",
            "function.vpc",
            "a Kafka trigger needs VPC access",
        ),
        ("    source: zip", "    source: obs", "function.code.obs_url", "missing required field"),
        (
            "    smn_topic_urn: ${var.failure_topic_urn}",
            "    smn_topic_urn: ${var.failure_topic_urn}\n    obs:\n      bucket: b",
            "async.on_failure",
            "exactly one destination",
        ),
        ("  name: cloudeye-event-forwarder", "  name: 9lives", "function.name", "a letter first"),
        ("  memory: 256", "  memory: 256\n  memory: 512", "function.memory", "duplicate field"),
        ("    schedule: 5m", "    schedule: 90m", "triggers.timer.schedule", "'90m' is not a rate: 1m to"),
        ("    schedule: 5m", "    schedule: 0h", "triggers.timer.schedule", "is not a rate"),
        ("    schedule: 5m", "    schedule: every 5m", "triggers.timer.schedule", "is not a rate"),
        (
            "      event_name: ForwarderHeartbeat",
            "      event_name: ForwarderHeartbeat\n      time: 1732611012000",
            "triggers.timer.event.time",
            "leave time out: each event takes the moment the timer fires",
        ),
        (
            "        event_level: Info",
            "        event_level: Loud",
            "triggers.timer.event.detail.event_level",
            "Critical",
        ),
        (
            "      event_source: forwarder.heartbeat",
            "      event_source: heartbeat",
            "triggers.timer.event.event_source",
            "must be 'service.item'",
        ),
        (
            "        resource_name: cloudeye-event-forwarder",
            "        resource_name: ${var.region}",
            "triggers.timer.event",
            "${var.NAME} references are not allowed in the timer's event",
        ),
        (
            "        content: the event forwarder is alive",
            "        content: " + "x" * 2100,
            "triggers.timer.event",
            "a timer carries at most 2048",
        ),
        ("  namespace: FORWARDER.EVENTS", "  namespace: SYS.EVENTS", "metrics.namespace", "is reserved"),
        ("  namespace: FORWARDER.EVENTS", "  namespace: forwarder", "metrics.namespace", "is not a custom"),
        (
            "    CLOUDEYE_TIMEOUT_S: 10",
            "    CLOUDEYE_TIMEOUT_S: 10\n    FORWARDER_METRICS_NAMESPACE: A.B",
            "function.environment.FORWARDER_METRICS_NAMESPACE",
            "also set by metrics.namespace; keep one",
        ),
        ("    period_s: 300", "    period_s: 60", "metrics.alarms.period_s", "60 is not one of: 300, 1200"),
    ],
)
def test_rule_violations_are_named(tmp_path: Path, old: str, new: str, field: str, words: str) -> None:
    # The shipped template with its commented-out examples (timer, metrics) switched on
    assert WITH_METRICS.count(old) == 1, old
    path = tmp_path / "template.yaml"
    path.write_text(WITH_METRICS.replace(old, new), encoding="utf-8")
    problem = problem_for(path, field)
    assert words in problem
    assert re.match(r"template\.yaml:\d+: ", problem)


def test_a_bad_field_of_the_heartbeat_event_is_named_with_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    text = WITH_METRICS.replace("        event_level: Info", "        event_level: Loud")
    path.write_text(text, encoding="utf-8")
    problem = problem_for(path, "triggers.timer.event.detail.event_level")
    assert problem.startswith(f"template.yaml:{line_of(path, 'event_level: Loud')}: ")


def test_not_yaml_at_all(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("function:\n  name: [unclosed\n", encoding="utf-8")
    (problem,) = problems(path)
    assert "not valid YAML" in problem


def test_cli_reports_problems_and_writes_nothing(tmp_path: Path) -> None:
    # GIVEN a template with a wrong field, a wrong type and a wrong runtime
    path = tmp_path / "template.yaml"
    path.write_text(
        SHIPPED.replace("  memory: 256", "  memroy: 256\n  memory: 256")
        .replace("  timeout: 60", "  timeout: sixty")
        .replace("  runtime: Python3.10", "  runtime: Python3.9"),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    # WHEN it is rendered
    deploy = str(ROOT / "scripts" / "deploy")
    proc = subprocess.run(
        [sys.executable, deploy, "--template", str(path), "--out", str(out), "--dry-run"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    # THEN each field is named with its line, and no file appears
    assert proc.returncode == 2
    for needle, field in (
        ("memroy:", "function.memroy"),
        ("timeout: sixty", "function.timeout"),
        ("runtime: Python3.9", "function.runtime"),
    ):
        assert f"template.yaml:{line_of(path, needle)}: {field}: " in proc.stderr
    assert "nothing was written" in proc.stderr
    assert not out.exists()


# --- the heartbeat timer and the metrics section (commented out in the shipped template) ------------


def test_the_commented_out_examples_are_valid_when_uncommented(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(WITH_METRICS, encoding="utf-8")
    template = load_template(path)
    assert template.data["triggers"]["timer"]["schedule"] == "5m"
    assert template.data["metrics"]["alarms"]["rejected_above"] == 10
    assert template.warnings == []
