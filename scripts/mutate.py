"""Mutation testing with mutmut: `make mutate`, `make mutate MODULES="signer batching"`.

Usage: python scripts/mutate.py run [--max-children N] [--untested] [MODULE or MUTANT ...]
       python scripts/mutate.py report [MODULE ...]
       python scripts/mutate.py show|apply|results|browse ... (passed to mutmut)

A MODULE is a module of the forwarder package (``signer``), a dotted name (``deploy.template``)
or ``core``, which stands for the CORE_MODULES. `run` mutates, runs the tests that reach each
mutant, then prints `report`: the mutation score per module, one line for the core modules
against CORE_GOAL, and every mutant that was not killed. Each one is either killed by a test or
explained in tests/mutation_survivors.md. mutants/ holds the copies and the results: without
arguments a second run only tests new or changed functions; with MODULEs it re-tests all of
their mutants; `--untested` with MODULEs tests only those of their mutants that have no result
yet, which finishes a run that was stopped.

Three things are adapted here rather than in mutmut's configuration:
- mutmut names a mutant after its file path, `function/forwarder/signer.py` giving
  `function.forwarder.signer`, but the package is imported as `forwarder` (function/ is on the
  path, as on the platform). Without the same name no test is ever linked to a mutant.
- the tests also read files outside the mutated packages (the emulator, template.yaml, scripts);
  every top-level entry is copied into mutants/ so the copy is the whole project.
- tests that start another interpreter run the mutated copy too (see set_mutant_under_test).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = "function"  # on sys.path: function/forwarder/x.py is the module forwarder.x
# Never copied into mutants/: tooling state, outputs, and what mutmut copies itself.
_NOT_COPIED = {".git", ".venv", "mutants", "build", "dist", "tests", "deploy", PACKAGE_DIR}
_KILLED = {"killed", "timeout", "caught by type check"}

# The library every entry shares to validate, chunk, sign, pace and send events. The entry
# adapters (HTTP, queue and trigger entries, logs, metrics) and deploy/ are scored too, but the
# goal applies to these.
CORE_MODULES = (
    "forwarder.signer",
    "forwarder.batching",
    "forwarder.events",
    "forwarder.report",
    "forwarder.settings",
    "forwarder.client",
    "forwarder.pacing",
    "forwarder.pipeline",
    "forwarder.connection",
    "forwarder.scrub",
)
CORE_GOAL = 95.0  # per cent of the core modules' tested mutants killed


def _patch_mutmut() -> None:
    from mutmut.utils import format_utils

    original = format_utils.get_mutant_name

    def get_mutant_name(relative_source_path: Path, mutant_method_name: str) -> str:
        parts = Path(relative_source_path).parts
        if parts and parts[0] == PACKAGE_DIR:
            relative_source_path = Path(*parts[1:])
        return original(relative_source_path, mutant_method_name)

    # Must happen before mutmut.__main__ and file_mutation import the name.
    format_utils.get_mutant_name = get_mutant_name

    from mutmut import configuration

    settings = configuration.config()
    extra = [Path(p.name) for p in ROOT.iterdir() if p.name not in _NOT_COPIED]
    extra += [Path(PACKAGE_DIR) / p.name for p in (ROOT / PACKAGE_DIR).iterdir() if p.name != "forwarder"]
    settings.also_copy += [p for p in extra if p not in settings.also_copy and p.name != "__pycache__"]

    # Scripts started by their shebang look for the project's virtualenv next to them.
    venv = ROOT / "mutants" / ".venv"
    if not venv.exists() and (ROOT / ".venv").exists():
        venv.parent.mkdir(exist_ok=True)
        venv.symlink_to(ROOT / ".venv")
    # ... but `#!/usr/bin/env python3` imports the mutated package (which imports mutmut) before
    # it can switch to that virtualenv: let the shebang find the virtualenv's python3 first.
    if (ROOT / ".venv" / "bin").is_dir():
        os.environ["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"


def _expand(modules: list[str]) -> list[str]:
    """The modules named, with ``core`` standing for CORE_MODULES."""
    expanded: list[str] = []
    for module in modules:
        expanded += CORE_MODULES if module == "core" else [module]
    return expanded


def _pattern(module: str) -> str:
    if "__mutmut_" in module:  # one mutant, by the name `report` prints
        return module
    name = module.removesuffix(".py").replace("/", ".")
    name = name.removeprefix(f"{PACKAGE_DIR}.")
    if "." not in name:
        name = f"forwarder.{name}"
    return f"{name}.*"


def _module_of(mutant: str) -> str:
    from mutmut.utils.format_utils import get_module_from_key

    return get_module_from_key(mutant)


def without_results(mutants: list[tuple[Any, str, int | None]]) -> list[tuple[Any, str, int | None]]:
    """The (data, name, exit code) triples mutmut is about to run, less those with a result."""
    return [mutant for mutant in mutants if mutant[2] is None]


def _only_untested() -> None:
    """Make the run skip mutants that have a result. The filter applies after mutmut has made the
    mutants again, so functions changed since the last run are tested as new."""
    import mutmut.__main__

    collect = mutmut.__main__.collect_source_file_mutation_data

    def collect_untested(*, mutant_names: Any) -> Any:
        mutants, by_path = collect(mutant_names=mutant_names)
        return without_results(mutants), by_path

    mutmut.__main__.collect_source_file_mutation_data = collect_untested


def report(modules: list[str]) -> int:
    """Print the score per module and the mutants that were not killed; 1 when none was tested."""
    import fnmatch

    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    patterns = [_pattern(m) for m in _expand(modules)]
    by_module: dict[str, Counter[str]] = {}
    not_killed: list[tuple[str, str]] = []
    timed_out: list[str] = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for mutant, code in data.exit_code_by_key.items():
            if patterns and not any(fnmatch.fnmatch(mutant, p) for p in patterns):
                continue
            status = status_by_exit_code[code]
            by_module.setdefault(_module_of(mutant), Counter())[status] += 1
            if status not in _KILLED and status != "not checked":
                not_killed.append((mutant, status))
            elif status == "timeout":
                timed_out.append(mutant)

    # mutants: tested so far; untested: not run yet (a run stopped early), left out of the score.
    print(f"\n{'module':<28} {'mutants':>8} {'killed':>8} {'other':>6} {'score':>7} {'untested':>9}")
    total = Counter[str]()
    by_package: dict[str, Counter[str]] = {}
    for module in sorted(by_module):
        counts = by_module[module]
        total += counts
        by_package.setdefault(module.split(".")[0], Counter()).update(counts)
        print(_row(module, counts))
    if not total:
        print("no mutants tested yet: run `make mutate` first")
        return 1
    if len(by_package) > 1:
        for package in sorted(by_package):
            print(_row(f"{package} (all modules)", by_package[package]))
    print(_row("all", total))
    print(core_summary(by_module))
    if not_killed:
        print("\nNot killed (explained in tests/mutation_survivors.md; show one with")
        print("`.venv/bin/python scripts/mutate.py show <name>`):")
        for mutant, status in sorted(not_killed):
            print(f"    {mutant}: {status}")
    if timed_out:
        # An endless loop is stopped this way, but on a loaded machine a mutant whose tests all
        # pass can run past the limit too: these are worth a look before trusting the score.
        print("\nTimed out (counted as killed; a loaded machine times out slow survivors too):")
        for mutant in sorted(timed_out):
            print(f"    {mutant}")
    return 0


def _row(name: str, counts: Counter[str]) -> str:
    killed, tested = _score(counts)
    score = f"{100 * killed / tested:.1f}%" if tested else "-"
    return f"{name:<28} {tested:>8} {killed:>8} {tested - killed:>6} {score:>7} {counts['not checked']:>9}"


def _score(counts: Counter[str]) -> tuple[int, int]:
    """(killed, tested) of one module's mutant statuses; mutants not yet run are not counted."""
    tested = sum(n for status, n in counts.items() if status != "not checked")
    return sum(counts[s] for s in _KILLED), tested


def core_summary(by_module: dict[str, Counter[str]]) -> str:
    """The line for the core modules together: killed / tested, the score, and whether it meets
    CORE_GOAL. Names the core modules without results: the figure covers only those tested."""
    killed = tested = untested = 0
    missing = []
    for module in CORE_MODULES:
        counts = by_module.get(module, Counter())
        module_killed, module_tested = _score(counts)
        if not module_tested:
            missing.append(module)
        killed += module_killed
        tested += module_tested
        untested += counts["not checked"] if module_tested else 0
    if not tested:
        return "\ncore modules: no mutant tested (`make mutate-core` tests them)"
    score = 100 * killed / tested
    verdict = "meets" if score >= CORE_GOAL else "is below"
    line = f"\ncore modules: {killed} / {tested} killed, {score:.1f}%: {verdict} the {CORE_GOAL:g}% goal"
    if untested:
        line += f"\n    ({untested} mutants of the modules tested not run yet, so not counted)"
    if missing:
        line += f"\n    (not tested, so not counted: {', '.join(missing)})"
    return line


def main(argv: list[str]) -> int:
    os.chdir(ROOT)
    _patch_mutmut()
    import mutmut.__main__
    from mutmut.__main__ import cli
    from mutmut.mutation import trampoline

    def set_mutant_under_test(name: str | None) -> None:
        # Tests that start another interpreter (scripts, fresh imports) run the mutated copy too.
        # In the first run, which records which test reaches which function, mutmut's code there
        # would look for its configuration in whatever directory the test chose: keep that mode
        # in this process only, so those interpreters run the unmutated functions.
        trampoline.set_mutant_under_test(name)
        if name == "stats":
            os.environ.pop("MUTANT_UNDER_TEST", None)

    mutmut.__main__.set_mutant_under_test = set_mutant_under_test

    command, args = (argv[0], argv[1:]) if argv else ("run", [])
    if command == "report":
        return report(args)
    if command != "run":
        return cli.main(args=[command, *args], standalone_mode=False) or 0
    options, only_untested = [], False
    while args and args[0].startswith("--"):
        option = args.pop(0)
        if option == "--untested":
            only_untested = True
        elif option.startswith("--max-children"):
            options += [option] if "=" in option else [option, args.pop(0)]
        else:
            print(f"unknown option {option}", file=sys.stderr)
            return 2
    if only_untested:
        if not args:
            print("--untested needs the modules to finish (or `core`)", file=sys.stderr)
            return 2
        _only_untested()
    cli.main(args=["run", *options, *[_pattern(m) for m in _expand(args)]], standalone_mode=False)
    return report(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
