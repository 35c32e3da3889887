"""Load template.yaml, validate it against template.schema.json and the rules a schema cannot say.

Every problem names the field (`function.runtime`) and its line in template.yaml, so a user can jump
straight to it. Nothing here writes files: rendering only starts from a `Template` that passed.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from forwarder.jsontext import field_path

SCHEMA_PATH = Path(__file__).with_name("template.schema.json")

VAR_REF = re.compile(r"\$\{var\.([A-Za-z_][A-Za-z0-9_]*)\}")
# Any interpolation or directive Terraform would evaluate inside a string.
_INTERPOLATION = re.compile(r"[$%]\{[^}]*\}?")

# Settings that hold credentials: they may only travel as encrypted_user_data (function.secrets).
SECRET_ENV_NAMES = frozenset(
    {
        "FORWARDER_INGEST_TOKEN",
        "HUAWEICLOUD_SDK_AK",
        "HUAWEICLOUD_SDK_SK",
        "HUAWEICLOUD_SDK_SECURITY_TOKEN",
        "CLOUDEYE_AUTH_TOKEN",
    }
)
_SECRET_LIKE_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|_SK|_KEY)$")

# FunctionGraph: all environment variables of a function together may hold 4096 characters.
ENVIRONMENT_MAX_CHARS = 4096

# Cloud Eye keeps these namespace services for its own metrics.
RESERVED_NAMESPACES = frozenset({"SYS", "AGT", "SRE"})
METRICS_NAMESPACE_ENV = "FORWARDER_METRICS_NAMESPACE"
# A timer's rate: whole minutes (1-60), hours (1-24) or days (1-30).
TIMER_RATE = re.compile(r"^([1-9][0-9]*)([mhd])$")
TIMER_RATE_MAX = {"m": 60, "h": 24, "d": 30}
# FunctionGraph keeps at most 2 KB of a timer's additional information (its user_event).
TIMER_USER_EVENT_MAX_BYTES = 2048

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the template: where (field path and line) and why."""

    path: FieldPath
    line: int | None
    message: str

    @property
    def field(self) -> str:
        return field_path(self.path)

    def render(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        return f"{where}: {self.field or '(top level)'}: {self.message}"


class TemplateError(ValueError):
    """The template cannot be used; `problems` lists every reason found, in line order."""

    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.field))
        lines = "\n".join(p.render(filename) for p in self.problems)
        super().__init__(f"{filename} is not a valid deploy template:\n{lines}")


@dataclass
class Template:
    """A validated template with the schema's defaults filled in."""

    path: Path
    data: dict[str, Any]
    lines: dict[FieldPath, int] = field(repr=False)
    warnings: list[str] = field(default_factory=list)

    @property
    def function(self) -> dict[str, Any]:
        return self.data["function"]

    @property
    def variables(self) -> dict[str, dict[str, Any]]:
        return self.data["variables"]

    @property
    def sensitive_variables(self) -> set[str]:
        return {name for name, spec in self.variables.items() if spec.get("sensitive")}

    @property
    def zip_name(self) -> str:
        return f"{self.function['name']}.zip"


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def load_template(path: str | Path) -> Template:
    """Read, validate and complete a template; raise `TemplateError` naming every bad field."""
    path = Path(path)
    try:
        filename = str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        filename = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise TemplateError(str(path), [Problem((), None, f"cannot read the template: {e.strerror}")]) from e
    return parse_template(text, path=path, filename=filename)


def parse_template(text: str, *, path: Path, filename: str = "template.yaml") -> Template:
    """Validate template text (see `load_template`)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise TemplateError(filename, [Problem((), line, f"not valid YAML: {e}")]) from e
    if not isinstance(data, dict):
        raise TemplateError(filename, [Problem((), 1, "the template must be a mapping of fields")])

    lines: dict[FieldPath, int] = {(): 1}
    problems: list[Problem] = []
    _map_lines(node, (), lines, problems)
    schema = load_schema()
    problems += _schema_problems(schema, data, lines)
    if problems:
        raise TemplateError(filename, problems)

    _fill_defaults(schema, data)
    template = Template(path=path, data=data, lines=lines)
    problems = _rule_problems(template)
    if problems:
        raise TemplateError(filename, problems)
    return template


# --- line numbers -------------------------------------------------------------------------------


def _map_lines(
    node: yaml.Node | None, path: FieldPath, lines: dict[FieldPath, int], problems: list[Problem]
) -> None:
    """Record the 1-based line of every key and list item; report duplicate keys (YAML keeps the last)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    Problem(child, line, "duplicate field (YAML would silently keep the last one)")
                )
            seen.add(key)
            lines[child] = line
            _map_lines(value_node, child, lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _map_lines(item, child, lines, problems)


def _line_of(lines: dict[FieldPath, int], path: FieldPath) -> int | None:
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path)


# --- schema validation --------------------------------------------------------------------------


def _schema_problems(schema: dict[str, Any], data: Any, lines: dict[FieldPath, int]) -> list[Problem]:
    from jsonschema import Draft202012Validator  # imported here: only deploy needs it

    validator = Draft202012Validator(schema)
    problems: list[Problem] = []
    for error in validator.iter_errors(data):
        problems += _explain(error, lines)
    return problems


def _explain(error: Any, lines: dict[FieldPath, int]) -> Iterator[Problem]:
    path: FieldPath = tuple(error.absolute_path)
    kind = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        for key in sorted(set(error.instance) - set(allowed), key=str):
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            maybe = f" (did you mean '{hint[0]}'?)" if hint else ""
            known = f"; known fields: {', '.join(allowed)}" if allowed else ""
            child = (*path, key)
            yield Problem(child, _line_of(lines, child), f"unknown field{maybe}{known}")
        return
    if kind == "required":
        missing = re.match(r"'([^']+)'", error.message)
        name = missing.group(1) if missing else "?"
        yield Problem((*path, name), _line_of(lines, path), "missing required field")
        return
    if "propertyNames" in error.relative_schema_path or "propertyNames" in error.schema_path:
        child = (*path, error.instance)
        what = schema.get("description", "a valid name")
        yield Problem(child, _line_of(lines, child), f"the name {error.instance!r} is not {what}")
        return
    line = _line_of(lines, path)
    if kind == "pattern":
        what = schema.get("description")
        message = f"{error.instance!r} is not {what}" if what else error.message
    elif kind in ("minProperties", "maxProperties"):
        message = f"expected {schema.get('description', error.message)}"
    elif kind == "enum":
        message = f"{error.instance!r} is not one of: {', '.join(map(str, error.validator_value))}"
    elif kind == "const":
        message = f"must be {error.validator_value!r}, not {error.instance!r}"
    else:
        message = error.message
    yield Problem(path, line, message)


def _fill_defaults(schema: dict[str, Any], value: Any) -> None:
    """Apply the schema's `default`s to absent fields of the objects present."""
    if not isinstance(value, dict):
        return
    properties = schema.get("properties", {})
    for key, sub in properties.items():
        if key not in value and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])
        if key in value:
            _fill_defaults(sub, value[key])
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, item in value.items():
            if key not in properties:
                _fill_defaults(extra, item)


# --- rules the schema cannot express ------------------------------------------------------------


def _walk_strings(value: Any, path: FieldPath) -> Iterator[tuple[FieldPath, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_strings(item, (*path, index))


def referenced_variables(value: Any) -> set[str]:
    """Names of every `${var.NAME}` inside a value (strings, lists, mappings)."""
    return {name for _, text in _walk_strings(value, ()) for name in VAR_REF.findall(text)}


def _rule_problems(t: Template) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: FieldPath, message: str) -> None:
        problems.append(Problem(path, _line_of(t.lines, path), message))

    declared = t.variables
    sensitive = t.sensitive_variables

    # Every interpolation is a declared ${var.NAME}; nothing else would be safe to pass to Terraform.
    for path, text in _walk_strings({k: v for k, v in t.data.items() if k != "variables"}, ()):
        for match in _INTERPOLATION.finditer(text):
            ref = VAR_REF.fullmatch(match.group(0))
            if ref is None:
                add(path, f"only ${{var.NAME}} references are allowed, found {match.group(0)!r}")
            elif ref.group(1) not in declared:
                add(path, f"undeclared variable {ref.group(1)!r}: declare it under variables:")

    for name, spec in declared.items():
        if spec.get("sensitive") and "default" in spec:
            add(
                ("variables", name, "default"),
                "a sensitive variable must not have a default (the value "
                f"would be written in plain text); pass it as TF_VAR_{name} instead",
            )

    fn = t.function
    environment = fn.get("environment", {})
    for key, value in environment.items():
        path = ("function", "environment", key)
        if key in SECRET_ENV_NAMES or _SECRET_LIKE_NAME.search(key):
            add(
                path,
                "looks like a secret: move it to function.secrets (encrypted_user_data) and reference "
                "a sensitive variable",
            )
        leaked = referenced_variables(value) & sensitive
        if leaked:
            add(
                path,
                f"references sensitive variable {sorted(leaked)[0]!r}: plain environment variables are "
                "not encrypted, move it to function.secrets",
            )
    for key, value in fn.get("secrets", {}).items():
        for name in referenced_variables(value) - sensitive:
            if name in declared:
                add(("function", "secrets", key), f"variable {name!r} must be declared with sensitive: true")
    overlap = set(environment) & set(fn.get("secrets", {}))
    for key in sorted(overlap):
        add(("function", "secrets", key), "also set in function.environment; keep one")

    size = len(json.dumps({**{k: str(v) for k, v in environment.items()}, **fn.get("secrets", {})}))
    if size > ENVIRONMENT_MAX_CHARS:
        add(
            ("function", "environment"),
            f"environment and secrets take {size} characters; FunctionGraph allows {ENVIRONMENT_MAX_CHARS}",
        )

    code = fn["code"]
    if code["source"] == "obs" and "obs_url" not in code:
        add(("function", "code", "obs_url"), "missing required field (code.source is obs)")
    if code["source"] == "zip" and "obs_url" in code:
        add(("function", "code", "obs_url"), "only used with code.source: obs")

    triggers = t.data.get("triggers", {})
    http = triggers.get("http")
    if http is not None:
        if http["gateway"] == "dedicated" and "instance_id" not in http:
            add(
                ("triggers", "http", "instance_id"),
                "missing required field (the dedicated gateway's instance)",
            )
        if http["gateway"] == "shared" and "instance_id" in http:
            add(("triggers", "http", "instance_id"), "only used with gateway: dedicated")
    kafka = triggers.get("kafka")
    if kafka is not None:
        if "vpc" not in fn:
            add(
                ("function", "vpc"), "missing required field: a Kafka trigger needs VPC access to the brokers"
            )
        password = kafka.get("password")
        if password is not None:
            for name in referenced_variables(password) - sensitive:
                if name in declared:
                    add(
                        ("triggers", "kafka", "password"),
                        f"variable {name!r} must be declared with sensitive: true",
                    )
        if ("password" in kafka) != ("username" in kafka):
            add(("triggers", "kafka"), "username and password go together (SASL); give both or neither")

    timer = triggers.get("timer")
    if timer is not None:
        for path, message in timer_problems(timer):
            add(("triggers", "timer", *path), message)

    metrics = t.data.get("metrics")
    if metrics is not None:
        service = metrics["namespace"].split(".")[0]
        if service.upper() in RESERVED_NAMESPACES:
            add(
                ("metrics", "namespace"),
                f"{service!r} is reserved for Cloud Eye's own metrics; choose another service name",
            )
        if METRICS_NAMESPACE_ENV in environment:
            add(("function", "environment", METRICS_NAMESPACE_ENV), "also set by metrics.namespace; keep one")

    unused = set(declared) - referenced_variables({k: v for k, v in t.data.items() if k != "variables"})
    for name in sorted(unused):
        t.warnings.append(
            f"{field_path(('variables', name))} (line {_line_of(t.lines, ('variables', name))}) "
            "is declared but never used"
        )
    return problems


def timer_user_event(event: dict[str, Any]) -> str:
    """The text a timer trigger sends as its user_event: the event as compact JSON."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def _event_path(field_name: str) -> FieldPath:
    """`detail.dimensions[0].name` -> ('detail', 'dimensions', 0, 'name')."""
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", field_name)
    return tuple(int(part[1:-1]) if part.startswith("[") else part for part in parts)


def timer_problems(timer: dict[str, Any]) -> list[tuple[FieldPath, str]]:
    """What is wrong with a timer trigger: its schedule and the event it sends."""
    found: list[tuple[FieldPath, str]] = []
    rate = TIMER_RATE.match(timer["schedule"])
    if timer["schedule_type"] == "rate" and (
        rate is None or int(rate.group(1)) > TIMER_RATE_MAX[rate.group(2)]
    ):
        rates = "1m to 60m, 1h to 24h or 1d to 30d"
        found.append((("schedule",), f"{timer['schedule']!r} is not a rate: {rates}"))
    event = timer["event"]
    if "time" in event:
        found.append((("event", "time"), "leave time out: each event takes the moment the timer fires"))
    if referenced_variables(event):
        found.append((("event",), "${var.NAME} references are not allowed in the timer's event"))
    size = len(timer_user_event(event).encode("utf-8"))
    if size > TIMER_USER_EVENT_MAX_BYTES:
        found.append(
            (("event",), f"takes {size} bytes as JSON; a timer carries at most {TIMER_USER_EVENT_MAX_BYTES}")
        )
    # The forwarder's own rules, so a heartbeat that Cloud Eye would refuse is caught before deploy.
    from forwarder.events import now_ms, validate_events

    outcome = validate_events([{**event, "time": now_ms()}])
    for error in outcome.errors.get(0, []):
        if error.field != "time":
            found.append((("event", *_event_path(error.field)), error.message))
    return found

