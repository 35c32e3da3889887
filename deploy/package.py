"""Build the function's code zip: `function/` at the root plus its runtime dependencies.

Dependencies are installed by pip for the target runtime's interpreter and CPU, not this machine's
(`--platform manylinux2014_<arch> --implementation cp --python-version X.Y --only-binary=:all:`), so
the compiled pydantic-core inside matches what FunctionGraph runs. The zip is reproducible: entries
are sorted and carry a fixed timestamp.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# FunctionGraph runtime -> CPython version of its interpreter.
RUNTIMES = {"Python3.10": "3.10", "Python3.12": "3.12"}
DEFAULT_RUNTIME = "Python3.10"
# Architecture name in template.yaml -> pip platform tag, and the machine name in extension file names.
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}

MB = 1024 * 1024
# FunctionGraph "Notes and Constraints", function code: a ZIP sent through the API (which Terraform
# uses) may be 50 MB; the console takes 40 MB; unpacked code may be 1500 MB.
ZIP_LIMIT_BYTES = 50 * MB
CONSOLE_ZIP_LIMIT_BYTES = 40 * MB
UNZIPPED_LIMIT_BYTES = 1500 * MB

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_EXCLUDED_DIRS = {"__pycache__", "tests", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"}
_EXCLUDED_SOURCE_DIRS = {"test"}
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")
_EXCLUDED_SOURCE_FILES = re.compile(r"^(conftest\.py|test_.*\.py|.*_test\.py|\.DS_Store)$")
_EXTENSION = re.compile(r"\.cpython-(\d)(\d+)-([a-z0-9_]+)-linux-gnu\.so$")


class PackageError(RuntimeError):
    """The package could not be built, or is larger than FunctionGraph accepts."""


@dataclass
class PackageResult:
    """What was built: where, for which interpreter and platform, and how big."""

    path: Path
    python_version: str
    arch: str
    zipped_bytes: int
    unzipped_bytes: int
    files: int
    native_modules: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.path}: {self.zipped_bytes / MB:.1f} MB zipped, "
            f"{self.unzipped_bytes / MB:.1f} MB unzipped, {self.files} files "
            f"(Python {self.python_version}, {self.arch}; "
            f"limits {ZIP_LIMIT_BYTES // MB} MB zipped, {UNZIPPED_LIMIT_BYTES // MB} MB unzipped)"
        )


def python_version_for(runtime: str) -> str:
    try:
        return RUNTIMES[runtime]
    except KeyError:
        raise PackageError(
            f"unknown runtime {runtime!r}; FunctionGraph Python runtimes: {', '.join(RUNTIMES)}"
        ) from None


def requirement_names(path: Path) -> set[str]:
    """Normalised project names listed in a requirements file (following `-r` includes)."""
    names: set[str] = set()
    if not path.exists():
        return names
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith(("-r ", "--requirement ")):
            names |= requirement_names(path.parent / line.split(None, 1)[1])
        elif line and not line.startswith("-"):
            match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
            if match:
                names.add(_normalise(match.group(0)))
    return names


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def install_dependencies(
    requirements: Path, target: Path, *, python_version: str, arch: str, cache_dir: Path | None = None
) -> None:
    """pip-install the requirements into `target` as wheels for the given interpreter and CPU."""
    cmd = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-compile",
        "--platform", PLATFORMS[arch],
        "--implementation", "cp",
        "--python-version", python_version,
        "--only-binary=:all:",
        "--target", str(target),
        "-r", str(requirements),
    ]  # fmt: skip
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise PackageError(
            f"pip could not install {requirements.name} for Python {python_version} "
            f"({PLATFORMS[arch]}):\n{tail}"
        )


def _files(base: Path, *, source: bool) -> Iterator[tuple[str, Path]]:
    """(name in the zip, file) for every file under base that belongs in the package."""
    for dirpath, dirnames, filenames in os.walk(base):
        excluded = _EXCLUDED_DIRS | (_EXCLUDED_SOURCE_DIRS if source else set())
        dirnames[:] = sorted(d for d in dirnames if d not in excluded and not d.endswith(".egg-info"))
        if not source and Path(dirpath) == base and "bin" in dirnames:
            dirnames.remove("bin")  # console scripts written by pip for this machine's Python
        for name in sorted(filenames):
            if name.endswith(_EXCLUDED_SUFFIXES) or (source and _EXCLUDED_SOURCE_FILES.match(name)):
                continue
            path = Path(dirpath) / name
            yield path.relative_to(base).as_posix(), path


def _check_extensions(names: list[str], python_version: str, arch: str) -> list[str]:
    """Compiled modules in the package; fail if one was built for another interpreter or CPU."""
    want = ("".join(python_version.split(".")), MACHINES[arch])
    found = []
    for name in names:
        if not name.endswith(".so"):
            continue
        found.append(name)
        match = _EXTENSION.search(name)
        if match and (match.group(1) + match.group(2), match.group(3)) != want:
            raise PackageError(
                f"{name} is built for another interpreter or CPU than Python {python_version} on {arch}"
            )
    return found


def build_package(
    *,
    name: str,
    out_dir: Path,
    python_version: str,
    arch: str = "x86_64",
    source: Path = ROOT / "function",
    requirements: Path = ROOT / "requirements.txt",
    dev_requirements: Path | None = ROOT / "requirements-dev.txt",
    cache_dir: Path | None = None,
) -> PackageResult:
    """Build `<out_dir>/<name>.zip` and check it against FunctionGraph's size limits."""
    if arch not in PLATFORMS:
        raise PackageError(f"unknown arch {arch!r}; choose one of: {', '.join(PLATFORMS)}")
    if not re.fullmatch(r"3\.\d{1,2}", python_version):
        raise PackageError(f"python version must look like 3.10, not {python_version!r}")
    if not (source / "index.py").is_file():
        raise PackageError(
            f"{source / 'index.py'} is missing: FunctionGraph's handler index.handler lives there"
        )

    warnings: list[str] = []
    entries: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="fgs-package-") as tmp:
        deps = Path(tmp) / "deps"
        deps.mkdir()
        if requirement_names(requirements):
            install_dependencies(
                requirements, deps, python_version=python_version, arch=arch, cache_dir=cache_dir
            )
        dev_only = (
            requirement_names(dev_requirements) - requirement_names(requirements)
            if dev_requirements
            else set()
        )
        for arcname, path in _files(deps, source=False):
            top = arcname.split("/", 1)[0]
            if top.endswith(".dist-info") and _normalise(top.split("-", 1)[0]) in dev_only:
                warnings.append(f"left out {top}: a development-only package")
                continue
            entries[arcname] = path
        for arcname, path in _files(source, source=True):
            if arcname in entries:
                warnings.append(f"function/{arcname} replaces the file of the same name from a dependency")
            entries[arcname] = path

        names = sorted(entries)
        native = _check_extensions(names, python_version, arch)
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"{name}.zip"
        partial = target.with_suffix(".zip.partial")
        unzipped = 0
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for arcname in names:
                path = entries[arcname]
                info = zipfile.ZipInfo(arcname, date_time=_FIXED_TIME)
                mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
                info.external_attr = (0o100000 | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                data = path.read_bytes()
                unzipped += len(data)
                zf.writestr(info, data)
        zipped = partial.stat().st_size

    problems = []
    if zipped > ZIP_LIMIT_BYTES:
        problems.append(
            f"the zip is {zipped / MB:.1f} MB; FunctionGraph accepts at most {ZIP_LIMIT_BYTES // MB} MB "
            "uploaded directly (upload it to OBS and use function.code.source: obs, up to 300 MB)"
        )
    if unzipped > UNZIPPED_LIMIT_BYTES:
        problems.append(
            f"the code unpacks to {unzipped / MB:.1f} MB; FunctionGraph allows "
            f"{UNZIPPED_LIMIT_BYTES // MB} MB"
        )
    if problems:
        partial.unlink()
        raise PackageError("; ".join(problems))
    if zipped > CONSOLE_ZIP_LIMIT_BYTES:
        warnings.append(
            f"the zip is over {CONSOLE_ZIP_LIMIT_BYTES // MB} MB: the FunctionGraph console will not "
            "take it (Terraform and the API will)"
        )
    partial.replace(target)
    return PackageResult(
        path=target,
        python_version=python_version,
        arch=arch,
        zipped_bytes=zipped,
        unzipped_bytes=unzipped,
        files=len(names),
        native_modules=native,
        warnings=warnings,
    )


def copy_package(zip_path: Path, out_dir: Path) -> Path:
    """Place the zip next to main.tf.json, where `filebase64("${path.module}/...")` finds it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / zip_path.name
    if zip_path.resolve() != target.resolve():
        shutil.copyfile(zip_path, target)
    return target
