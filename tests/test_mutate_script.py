"""scripts/mutate.py's report: the core modules' aggregate line and the `core` shorthand.

Only the pure parts are tested here (no mutmut run): the counts per module are given directly.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_mutate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutate_script", ROOT / "scripts" / "mutate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mutate = load_mutate()


def test_every_core_module_is_a_module_of_the_package() -> None:
    for name in mutate.CORE_MODULES:
        package, module = name.split(".")
        assert package == "forwarder"
        assert (ROOT / "function" / "forwarder" / f"{module}.py").is_file(), name


def test_core_summary_adds_up_the_core_modules_only() -> None:
    by_module = {
        "forwarder.signer": Counter({"killed": 45, "survived": 2, "timeout": 3}),
        "forwarder.pipeline": Counter(
            {"killed": 90, "caught by type check": 5, "survived": 5, "not checked": 7}
        ),
        # Entry adapters and deploy are reported but outside the goal.
        "forwarder.http_ingest": Counter({"survived": 400}),
        "deploy.template": Counter({"survived": 10}),
    }
    line = mutate.core_summary(by_module)
    # signer 48 of 50, pipeline 95 of 100 ("not checked" is not counted): 143 of 150.
    assert "143 / 150 killed, 95.3%: meets the 95% goal" in line
    missing = [m for m in mutate.CORE_MODULES if m not in ("forwarder.signer", "forwarder.pipeline")]
    assert f"(not tested, so not counted: {', '.join(missing)})" in line


def test_core_summary_says_when_the_goal_is_missed() -> None:
    by_module = {module: Counter({"killed": 94, "survived": 6}) for module in mutate.CORE_MODULES}
    line = mutate.core_summary(by_module)
    assert "940 / 1000 killed, 94.0%: is below the 95% goal" in line
    assert "not tested" not in line


def test_core_summary_exactly_at_the_goal_meets_it() -> None:
    by_module = {"forwarder.batching": Counter({"killed": 19, "no tests": 1})}
    assert "19 / 20 killed, 95.0%: meets the 95% goal" in mutate.core_summary(by_module)


def test_core_summary_without_results_says_so() -> None:
    line = mutate.core_summary({"forwarder.logs": Counter({"killed": 3})})
    assert "core modules: no mutant tested" in line
    assert "%" not in line


def test_core_stands_for_the_core_modules_in_run_and_report() -> None:
    expanded = mutate._expand(["core", "deploy.template"])
    assert expanded == [*mutate.CORE_MODULES, "deploy.template"]
    assert [mutate._pattern(m) for m in expanded[:2]] == ["forwarder.signer.*", "forwarder.batching.*"]
    assert mutate._pattern("deploy.template") == "deploy.template.*"


def test_core_summary_counts_mutants_a_stopped_run_left_untested() -> None:
    by_module = {
        "forwarder.client": Counter({"killed": 19, "survived": 1, "not checked": 30}),
        "forwarder.signer": Counter({"not checked": 5}),  # not tested at all: named, not counted
    }
    line = mutate.core_summary(by_module)
    assert "19 / 20 killed, 95.0%" in line
    assert "(30 mutants of the modules tested not run yet, so not counted)" in line
    assert "forwarder.signer" in line.split("not tested, so not counted:")[1]


def test_untested_keeps_only_the_mutants_without_a_result() -> None:
    data = object()
    mutants = [
        (data, "forwarder.signer.x_sign__mutmut_1", None),
        (data, "forwarder.signer.x_sign__mutmut_2", 1),  # killed: keeps its result
        (data, "forwarder.signer.x_sign__mutmut_3", 0),  # survived: keeps its result too
        (data, "forwarder.client.x_verdict__mutmut_1", None),
    ]
    assert mutate.without_results(mutants) == [mutants[0], mutants[3]]
    assert mutate.without_results(mutants[1:3]) == []
