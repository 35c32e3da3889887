"""scripts/package: the zip's layout, its compiled wheels and bytecode per runtime/CPU, its limits,
and a smoke run.

Builds need PyPI (pip downloads the target platform's wheels); one pip cache serves the session.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from deploy import package
from deploy.package import PackageError, PackageResult, build_package
from tests.support.fresh_process import run_command

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "package"
ZIP_NAME = "cloudeye-event-forwarder.zip"
HOST_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
HOST_TAG = f"cpython-{sys.version_info.major}{sys.version_info.minor}"  # in this Python's .pyc names
HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
    platform.machine().lower()
)

# (runtime option, python version, arch): two FunctionGraph runtimes on two CPUs, and this machine's Python.
BUILDS = {
    "py310-x86_64": (["--runtime", "Python3.10", "--arch", "x86_64"], "3.10", "x86_64"),
    "py312-arm64": (["--runtime", "Python3.12", "--arch", "arm64"], "3.12", "arm64"),
    "host": (["--python-version", HOST_VERSION, "--arch", HOST_ARCH or "x86_64"], HOST_VERSION, HOST_ARCH),
}


@pytest.fixture(scope="session")
def pip_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pip-cache")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, pip_cache: Path) -> dict[str, tuple[Path, str]]:
    """Each build of BUILDS made once through the CLI: {key: (zip, everything it printed)}."""
    results = {}
    for key, (options, _, arch) in BUILDS.items():
        if arch is None:
            continue
        out = tmp_path_factory.mktemp(f"dist-{key}")
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), *options, "--out", str(out), "--cache-dir", str(pip_cache)],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results[key] = (out / ZIP_NAME, proc.stderr + proc.stdout)
    return results


def names_in(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


def bytecode_problems(names: list[str], version: str) -> list[str]:
    """What is wrong with the bytecode in a zip that should carry it for Python `version`."""
    tag = f"cpython-{version.replace('.', '')}"
    expected = {re.sub(r"([^/]+)\.py$", rf"__pycache__/\1.{tag}.pyc", n) for n in names if n.endswith(".py")}
    present = {n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))}
    return [f"missing {n}" for n in sorted(expected - present)] + [
        f"unexpected {n}" for n in sorted(present - expected)
    ]


@pytest.mark.parametrize("key", ["py310-x86_64", "py312-arm64", "host"])
def test_zip_layout(built: dict[str, tuple[Path, str]], key: str) -> None:
    if key not in built:
        pytest.skip(f"no manylinux wheels for this machine ({platform.machine()})")
    path, printed = built[key]
    version = BUILDS[key][1]
    names = names_in(path)
    assert "index.py" in names
    assert "main.py" in names
    assert "forwarder/__init__.py" in names
    assert "pydantic/__init__.py" in names
    assert any(re.fullmatch(r"pydantic-[\d.]+\.dist-info/METADATA", n) for n in names)
    assert not [n for n in names if n.startswith(("tests/", "bin/")) or "/tests/" in n]
    dev_only = ("pytest", "hypothesis", "ruff", "functions_framework", "huaweicloudsdk", "jsonschema", "yaml")
    assert not [n for n in names if n.lower().startswith(dev_only)]
    assert re.search(r"\d+\.\d MB zipped, \d+\.\d MB unzipped", printed)
    # Bytecode for the target version next to every source, when this machine has that Python
    # (always for the host build); else source only and a warning saying so.
    if package.find_python(version) is not None:
        assert bytecode_problems(names, version) == []
        assert f"bytecode for Python {version}" in printed
        with zipfile.ZipFile(path) as zf:
            headers = {n: zf.read(n)[:8] for n in names if n.endswith(".pyc")}
        if key == "host":
            assert {h[:4] for h in headers.values()} == {importlib.util.MAGIC_NUMBER}
        # flags 0b01: hash-based, and not checked against the source (an unpacked zip has no real mtimes)
        assert {int.from_bytes(h[4:8], "little") for h in headers.values()} == {0b01}
    else:
        assert key != "host"
        assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
        assert f"warning: no Python {version} was found" in printed
        assert "source only" in printed


@pytest.mark.parametrize("key", ["py310-x86_64", "py312-arm64", "host"])
def test_pydantic_core_binary_matches_runtime_and_cpu(built: dict[str, tuple[Path, str]], key: str) -> None:
    if key not in built:
        pytest.skip(f"no manylinux wheels for this machine ({platform.machine()})")
    _, version, arch = BUILDS[key]
    machine = {"x86_64": "x86_64", "arm64": "aarch64"}[arch]
    binaries = [n for n in names_in(built[key][0]) if n.startswith("pydantic_core/") and n.endswith(".so")]
    assert binaries == [
        f"pydantic_core/_pydantic_core.cpython-{version.replace('.', '')}-{machine}-linux-gnu.so"
    ]


def test_zip_is_reproducible(tmp_path: Path, pip_cache: Path) -> None:
    # A frozen copy of the code: function/ may change while the suite runs.
    source = shutil.copytree(ROOT / "function", tmp_path / "function")
    # This machine's Python, so the zips carry bytecode, compiled twice.
    results = [
        build_package(
            name="f", out_dir=tmp_path / out, python_version=HOST_VERSION, source=source, cache_dir=pip_cache
        )
        for out in ("one", "two")
    ]
    assert all(result.bytecode for result in results)
    assert f"pydantic/__pycache__/main.{HOST_TAG}.pyc" in names_in(results[0].path)
    assert results[0].path.read_bytes() == results[1].path.read_bytes()


APIG_EVENT = {
    "httpMethod": "POST",
    "path": "/cloudeye/events",
    "headers": {"content-type": "application/json"},
    "queryStringParameters": {"dry_run": "true"},
    "pathParameters": {},
    "requestContext": {"requestId": "smoke-1", "stage": "RELEASE"},
    "isBase64Encoded": False,
}

SMOKE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])

class Context:
    def getRequestID(self): return "smoke-1"
    def getRemainingTimeInMilliSeconds(self): return 30000
    def getSecurityAccessKey(self): return ""
    def getSecuritySecretKey(self): return ""
    def getSecurityToken(self): return ""
    def getProjectID(self): return "0123456789abcdef0123456789abcdef"
    def getUserData(self, key, default=None): return default

event = json.loads(sys.argv[2])
event["body"] = json.dumps([{
    "event_name": "PackageSmoke", "event_source": "forwarder.package", "time": int(time.time() * 1000),
    "detail": {"event_type": "EVENT.CUSTOM", "event_state": "normal", "event_level": "Info",
               "resource_id": "zip:smoke", "resource_name": "smoke", "content": "built and imported"},
}])
import index
import pydantic
answer = index.handler(event, Context())
print(json.dumps({"answer": answer, "pydantic": pydantic.__file__}))
"""


@pytest.fixture
def unpacked_host_zip(built: dict[str, tuple[Path, str]], tmp_path: Path) -> Path:
    """The zip for this machine's Python, unpacked into an empty directory."""
    if "host" not in built:
        pytest.skip(f"no manylinux wheels for this machine ({platform.machine()})")
    unpacked = tmp_path / "code"
    with zipfile.ZipFile(built["host"][0]) as zf:
        zf.extractall(unpacked)
    return unpacked


def assert_smoke_run_answers(unpacked: Path, cwd: Path) -> None:
    """A Python without site-packages (-I -S: nothing but the stdlib and the code in `unpacked`),
    writing no bytecode (-B), calls index.handler on an API Gateway event, and answers it."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CLOUDEYE_REGION": "ap-southeast-1",
        "CLOUDEYE_ENDPOINT": "http://127.0.0.1:9",
        "HUAWEICLOUD_SDK_PROJECT_ID": "0123456789abcdef0123456789abcdef",
        "HUAWEICLOUD_SDK_AK": "smoke-ak",
        "HUAWEICLOUD_SDK_SK": "smoke-sk",
    }
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", SMOKE, str(unpacked), json.dumps(APIG_EVENT)],
        capture_output=True, text=True, check=False, env=env, cwd=cwd, timeout=60,
    )  # fmt: skip
    # It answers API Gateway with a status code, using the pydantic from the zip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["pydantic"].startswith(str(unpacked))
    answer = result["answer"]
    assert isinstance(answer["statusCode"], int)
    assert answer["statusCode"] < 300, answer
    assert json.loads(answer["body"])["received"] == 1


def test_unpacked_zip_runs_the_handler_on_an_apig_event(unpacked_host_zip: Path, tmp_path: Path) -> None:
    assert_smoke_run_answers(unpacked_host_zip, tmp_path)


def test_unpacked_zip_starts_from_its_bytecode(unpacked_host_zip: Path, tmp_path: Path) -> None:
    # GIVEN the unpacked zip with every source file made to fail when it is compiled and run
    sources = list(unpacked_host_zip.rglob("*.py"))
    assert len(sources) > 100
    for path in sources:
        path.write_text('raise ImportError("compiled from source: " + __file__)\n', encoding="utf-8")
    # WHEN the handler runs, THEN it answers: every module came from the zip's bytecode
    assert_smoke_run_answers(unpacked_host_zip, tmp_path)


# --- without pip: limits and guards ------------------------------------------------------------


@pytest.fixture
def tiny_source(tmp_path: Path) -> tuple[Path, Path]:
    """A code root with index.py, a test file and a cache, and an empty requirements file."""
    source = tmp_path / "function"
    (source / "tests").mkdir(parents=True)
    (source / "__pycache__").mkdir()
    (source / "index.py").write_text("def handler(event, context):\n    return {}\n", encoding="utf-8")
    (source / "tests" / "test_index.py").write_text("", encoding="utf-8")
    (source / "__pycache__" / "index.cpython-311.pyc").write_bytes(b"\0")
    (source / "conftest.py").write_text("", encoding="utf-8")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# nothing\n", encoding="utf-8")
    return source, requirements


def build_tiny(
    tmp_path: Path, tiny_source: tuple[Path, Path], python_version: str = "3.10", **options: Any
) -> PackageResult:
    """The package of ``tiny_source`` in ``tmp_path/dist`` (no requirements to install)."""
    source, requirements = tiny_source
    return build_package(
        name="f",
        out_dir=tmp_path / "dist",
        python_version=python_version,
        source=source,
        requirements=requirements,
        dev_requirements=None,
        **options,
    )


def test_tests_and_caches_stay_out(tmp_path: Path, tiny_source: tuple[Path, Path]) -> None:
    result = build_tiny(tmp_path, tiny_source, bytecode=False)
    assert names_in(result.path) == ["index.py"]
    assert result.files == 1
    assert "source only" in result.summary()


def test_stray_bytecode_gives_way_to_the_targets(tmp_path: Path, tiny_source: tuple[Path, Path]) -> None:
    # tiny_source holds a stray __pycache__/index.cpython-311.pyc; the zip carries only what was compiled
    result = build_tiny(tmp_path, tiny_source, python_version=HOST_VERSION)
    pyc = f"__pycache__/index.{HOST_TAG}.pyc"
    assert names_in(result.path) == [pyc, "index.py"]
    with zipfile.ZipFile(result.path) as zf:
        assert zf.read(pyc)[:4] == importlib.util.MAGIC_NUMBER
    assert result.bytecode
    assert f"bytecode for Python {HOST_VERSION}" in result.summary()
    # compiled in a copy: the code root is as it was
    source, _ = tiny_source
    assert list(source.rglob("*.pyc")) == [source / "__pycache__" / "index.cpython-311.pyc"]
    assert (source / "__pycache__" / "index.cpython-311.pyc").read_bytes() == b"\0"


def test_bytecode_is_compiled_with_a_fixed_hash_seed(tmp_path: Path, tiny_source: tuple[Path, Path]) -> None:
    # Python 3.10 marshals a set constant (`x in {"a", "b"}`) in the order of its string hashes,
    # random per process unless seeded; from 3.11 on marshal sorts them, so comparing two builds
    # with this Python (test_zip_is_reproducible) cannot see an unseeded 3.10 compile.
    log = tmp_path / "seeds"
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(
        f'#!/bin/sh\necho "${{PYTHONHASHSEED-unset}}" >> "{log}"\nexec "{sys.executable}" "$@"\n',
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    result = build_tiny(tmp_path, tiny_source, python_version=HOST_VERSION, bytecode_python=str(wrapper))
    assert result.bytecode
    # the version check, then the compile
    assert log.read_text(encoding="utf-8").splitlines()[1:] == ["0"]


def test_without_an_interpreter_of_the_target_version_the_zip_is_source_only(
    tmp_path: Path, tiny_source: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(package, "find_python", lambda version: None)
    result = build_tiny(tmp_path, tiny_source, python_version=HOST_VERSION)
    assert names_in(result.path) == ["index.py"]
    assert not result.bytecode
    [warning] = result.warnings
    assert f"no Python {HOST_VERSION} was found" in warning
    assert "source only" in warning
    assert f"python{HOST_VERSION} on PATH" in warning
    assert "--bytecode-python" in warning


def test_source_the_target_python_cannot_compile_is_refused(
    tmp_path: Path, tiny_source: tuple[Path, Path]
) -> None:
    source, _ = tiny_source
    (source / "forwarder").mkdir()
    (source / "forwarder" / "broken.py").write_text("def handler(event, context:\n", encoding="utf-8")
    with pytest.raises(PackageError, match=rf"Python {HOST_VERSION} .* cannot compile .*broken\.py") as e:
        build_tiny(tmp_path, tiny_source, python_version=HOST_VERSION)
    assert str(source / "forwarder" / "broken.py") in str(e.value)
    assert "SyntaxError" in str(e.value)
    assert not (tmp_path / "dist").exists() or list((tmp_path / "dist").iterdir()) == []


@pytest.mark.parametrize("limit", ["ZIP_LIMIT_BYTES", "UNZIPPED_LIMIT_BYTES"])
def test_over_the_limit_fails_and_leaves_no_zip(
    tmp_path: Path, tiny_source: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, limit: str
) -> None:
    monkeypatch.setattr(package, limit, 10)
    with pytest.raises(PackageError, match="FunctionGraph"):
        build_tiny(tmp_path, tiny_source)
    assert list((tmp_path / "dist").iterdir()) == []


def test_limits_are_functiongraphs() -> None:
    assert package.ZIP_LIMIT_BYTES == 50 * 1024 * 1024
    assert package.CONSOLE_ZIP_LIMIT_BYTES == 40 * 1024 * 1024
    assert package.UNZIPPED_LIMIT_BYTES == 1500 * 1024 * 1024


def test_a_binary_for_another_cpu_is_refused() -> None:
    names = ["pydantic_core/_pydantic_core.cpython-310-aarch64-linux-gnu.so"]
    with pytest.raises(PackageError, match="another interpreter or CPU"):
        package._check_extensions(names, "3.10", "x86_64")
    assert package._check_extensions(names, "3.10", "arm64") == names


def test_missing_index_is_refused(tmp_path: Path) -> None:
    (tmp_path / "function").mkdir()
    with pytest.raises(PackageError, match=r"index\.py"):
        build_package(
            name="f", out_dir=tmp_path / "dist", python_version="3.10", source=tmp_path / "function"
        )


def run_package_cli(
    tmp_path: Path, tiny_source: tuple[Path, Path], *options: str
) -> subprocess.CompletedProcess[str]:
    """scripts/package on ``tiny_source`` (no pip run) into ``tmp_path/out``."""
    source, requirements = tiny_source
    argv = [
        sys.executable, str(SCRIPT), *options, "--arch", "x86_64", "--out", str(tmp_path / "out"),
        "--source", str(source), "--requirements", str(requirements),
    ]  # fmt: skip
    return run_command(argv, timeout=120)


@pytest.mark.parametrize(
    ("options", "bytecode"),
    [
        ([], True),
        (["--bytecode-python", sys.executable], True),
        (["--no-bytecode"], False),
    ],
)
def test_the_cli_chooses_bytecode_or_source_only(
    tmp_path: Path, tiny_source: tuple[Path, Path], options: list[str], bytecode: bool
) -> None:
    proc = run_package_cli(tmp_path, tiny_source, "--python-version", HOST_VERSION, *options)
    assert proc.returncode == 0, proc.stderr
    names = names_in(tmp_path / "out" / ZIP_NAME)
    if bytecode:
        assert names == [f"__pycache__/index.{HOST_TAG}.pyc", "index.py"]
        assert f"bytecode for Python {HOST_VERSION}" in proc.stdout
    else:
        assert names == ["index.py"]
        assert "source only" in proc.stdout
    assert proc.stderr == ""


@pytest.mark.parametrize("interpreter", ["wrong version", "not an interpreter", "missing"])
def test_a_wrong_bytecode_python_is_refused(
    tmp_path: Path, tiny_source: tuple[Path, Path], interpreter: str
) -> None:
    target = "3.12" if HOST_VERSION == "3.10" else "3.10"
    not_python = tmp_path / "python-not"
    not_python.write_text("#!/bin/sh\necho 'pyenv: python3.10: command not found' >&2\nexit 127\n")
    not_python.chmod(0o755)
    path = {
        "wrong version": sys.executable,
        "not an interpreter": str(not_python),
        "missing": str(tmp_path / "no-such-python"),
    }[interpreter]
    proc = run_package_cli(tmp_path, tiny_source, "--python-version", target, "--bytecode-python", path)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: --bytecode-python {path}: "), proc.stderr
    if interpreter == "wrong version":
        assert f"it is Python {HOST_VERSION}, the package is for Python {target}" in proc.stderr
    else:
        assert "does not run" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_runtime_is_refused_by_the_cli(tmp_path: Path) -> None:
    argv = [sys.executable, str(SCRIPT), "--runtime", "Python3.9", "--out", str(tmp_path)]
    proc = run_command(argv, timeout=60)
    assert proc.returncode == 2
    assert "Python3.10" in proc.stderr
