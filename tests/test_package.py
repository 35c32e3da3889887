"""scripts/package: the zip's layout, its compiled wheels per runtime/CPU, its limits, and a smoke run.

Builds need PyPI (pip downloads the target platform's wheels); one pip cache serves the session.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deploy import package
from deploy.package import PackageError, PackageResult, build_package
from tests.support.fresh_process import run_command

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "package"
ZIP_NAME = "cloudeye-event-forwarder.zip"
HOST_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
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
    """Each build of BUILDS made once through the CLI: {key: (zip, printed summary)}."""
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
        results[key] = (out / ZIP_NAME, proc.stdout)
    return results


def names_in(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


@pytest.mark.parametrize("key", ["py310-x86_64", "py312-arm64"])
def test_zip_layout(built: dict[str, tuple[Path, str]], key: str) -> None:
    path, summary = built[key]
    names = names_in(path)
    assert "index.py" in names
    assert "main.py" in names
    assert "forwarder/__init__.py" in names
    assert "pydantic/__init__.py" in names
    assert any(re.fullmatch(r"pydantic-[\d.]+\.dist-info/METADATA", n) for n in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    assert not [n for n in names if n.startswith(("tests/", "bin/")) or "/tests/" in n]
    dev_only = ("pytest", "hypothesis", "ruff", "functions_framework", "huaweicloudsdk", "jsonschema", "yaml")
    assert not [n for n in names if n.lower().startswith(dev_only)]
    assert re.search(r"\d+\.\d MB zipped, \d+\.\d MB unzipped", summary)


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
    first, second = (
        build_package(
            name="f", out_dir=tmp_path / out, python_version="3.10", source=source, cache_dir=pip_cache
        ).path.read_bytes()
        for out in ("one", "two")
    )
    assert first == second


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


def test_unpacked_zip_runs_the_handler_on_an_apig_event(
    built: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    if "host" not in built:
        pytest.skip(f"no manylinux wheels for this machine ({platform.machine()})")
    # GIVEN the zip for this machine's Python, unpacked into an empty directory
    unpacked = tmp_path / "code"
    with zipfile.ZipFile(built["host"][0]) as zf:
        zf.extractall(unpacked)
    # WHEN a Python without site-packages (-I -S: nothing but the stdlib and the zip) calls index.handler
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CLOUDEYE_REGION": "ap-southeast-1",
        "CLOUDEYE_ENDPOINT": "http://127.0.0.1:9",
        "HUAWEICLOUD_SDK_PROJECT_ID": "0123456789abcdef0123456789abcdef",
        "HUAWEICLOUD_SDK_AK": "smoke-ak",
        "HUAWEICLOUD_SDK_SK": "smoke-sk",
    }
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", SMOKE, str(unpacked), json.dumps(APIG_EVENT)],
        capture_output=True, text=True, check=False, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    # THEN it answers API Gateway with a status code, using the pydantic from the zip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["pydantic"].startswith(str(unpacked))
    answer = result["answer"]
    assert isinstance(answer["statusCode"], int)
    assert answer["statusCode"] < 300, answer
    assert json.loads(answer["body"])["received"] == 1


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


def build_tiny(tmp_path: Path, tiny_source: tuple[Path, Path]) -> PackageResult:
    """The package of ``tiny_source`` in ``tmp_path/dist`` (no requirements to install)."""
    source, requirements = tiny_source
    return build_package(
        name="f",
        out_dir=tmp_path / "dist",
        python_version="3.10",
        source=source,
        requirements=requirements,
        dev_requirements=None,
    )


def test_tests_and_caches_stay_out(tmp_path: Path, tiny_source: tuple[Path, Path]) -> None:
    result = build_tiny(tmp_path, tiny_source)
    assert names_in(result.path) == ["index.py"]
    assert result.files == 1


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


def test_unknown_runtime_is_refused_by_the_cli(tmp_path: Path) -> None:
    argv = [sys.executable, str(SCRIPT), "--runtime", "Python3.9", "--out", str(tmp_path)]
    proc = run_command(argv, timeout=60)
    assert proc.returncode == 2
    assert "Python3.10" in proc.stderr
