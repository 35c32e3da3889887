"""Build the function's code zip: `function/` at the root plus its runtime dependencies.

Dependencies are installed by pip for the target runtime's interpreter and CPU, not this machine's
(`--platform manylinux2014_<arch> --implementation cp --python-version X.Y --only-binary=:all:`), so
the compiled pydantic-core inside matches what FunctionGraph runs. The zip is reproducible: entries
are sorted and carry a fixed timestamp.

Every new FunctionGraph instance unpacks the zip afresh, so whatever bytecode the zip lacks is
compiled on the instance's first start: the forwarder's modules and pydantic's hundred-odd, which
more than doubles a cold start (figures in docs/deploy.md). The zip therefore carries
`__pycache__/<module>.cpython-XY.pyc` next to each source, compiled by an interpreter of the target
version (bytecode is specific to it): this one when it is that version, else `pythonX.Y` on PATH if
it runs, or the one named with `--bytecode-python`. They are unchecked-hash pycs: the zip's fixed
timestamp would make timestamp-checked ones look stale once unpacked, and the package never changes
after it is built. Without an interpreter of the target version the zip holds source only, with a
warning. Bytecode from the source tree or from pip is always left out.
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
    bytecode: bool = False
    native_modules: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        code = f"bytecode for Python {self.python_version}" if self.bytecode else "source only, no bytecode"
        return (
            f"{self.path}: {self.zipped_bytes / MB:.1f} MB zipped, "
            f"{self.unzipped_bytes / MB:.1f} MB unzipped, {self.files} files "
            f"(Python {self.python_version}, {self.arch}, {code}; "
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


def python_version_of(executable: str) -> str | None:
    """The "X.Y" version of an interpreter, or None when it does not run (such as a pyenv shim
    for a version that is not selected)."""
    try:
        proc = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def find_python(version: str) -> str | None:
    """An interpreter of CPython `version` to compile the bytecode with: this one, else
    `pythonX.Y` on PATH if it runs and is that version; None when there is none."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    candidate = shutil.which(f"python{version}")
    if candidate is not None and python_version_of(candidate) == version:
        return candidate
    return None


def _bytecode_python(version: str, explicit: str | None) -> str | None:
    """The interpreter named with --bytecode-python, checked, or the one `find_python` finds."""
    if explicit is None:
        return find_python(version)
    found = python_version_of(explicit)
    if found is None:
        raise PackageError(f"--bytecode-python {explicit}: it does not run as a Python interpreter")
    if found != version:
        raise PackageError(
            f"--bytecode-python {explicit}: it is Python {found}, the package is for Python {version}"
        )
    return explicit


def _compile(python: str, version: str, stage: Path, sources: list[str], shown: dict[str, str]) -> None:
    """Compile the `.py` files `sources` (names under `stage`) in place with `python`, which must be
    of `version`: unchecked-hash pycs in `__pycache__`, the staging directory stripped from the
    paths inside them, one process in sorted order and a fixed hash seed, so the bytes repeat."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONHASHSEED"] = "0"  # Python 3.10 marshals frozenset constants in hash order
    cmd = [
        python, "-m", "compileall", "-q",
        "--invalidation-mode", "unchecked-hash",
        "-s", str(stage),
        "-i", "-",
    ]  # fmt: skip
    listing = "".join(f"{stage / name}\n" for name in sorted(sources))
    proc = subprocess.run(
        cmd, input=listing, capture_output=True, text=True, check=False, env=env, timeout=600
    )
    if proc.returncode == 0:
        return
    output = (proc.stdout + proc.stderr).replace(f"{stage}{os.sep}", "")
    failed = re.findall(r"^\*\*\* Error compiling '(.+?)'", output, flags=re.MULTILINE)
    names = ", ".join(shown.get(name, name) for name in failed) or "the package"
    tail = "\n".join(output.strip().splitlines()[-15:])
    raise PackageError(
        f"Python {version} ({python}) cannot compile {names}, so the runtime cannot import it either:\n{tail}"
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


def _bytecode(
    python: str, version: str, stage: Path, entries: dict[str, Path], source: Path
) -> dict[str, Path]:
    """Compile the package's `.py` files in a staging copy: {name in the zip: pyc file}."""
    sources = sorted(name for name in entries if name.endswith(".py"))
    shown = {}
    for name in sources:
        copy = stage / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(entries[name], copy)
        if entries[name].is_relative_to(source):
            shown[name] = str(entries[name])
    _compile(python, version, stage, sources, shown)
    tag = "cpython-" + version.replace(".", "")
    pycs = {}
    for name in sources:
        folder, _, file = name.rpartition("/")
        pyc = f"{folder}/__pycache__/" if folder else "__pycache__/"
        pyc += f"{file[:-3]}.{tag}.pyc"
        if not (stage / pyc).is_file():
            raise PackageError(f"Python {version} ({python}) wrote no {pyc} for {name}")
        pycs[pyc] = stage / pyc
    return pycs


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
    bytecode: bool = True,
    bytecode_python: str | None = None,
) -> PackageResult:
    """Build `<out_dir>/<name>.zip` and check it against FunctionGraph's size limits.

    With `bytecode` the zip carries bytecode compiled by `bytecode_python` (checked to be of
    `python_version`) or else by the interpreter `find_python` finds; with none, source only and a
    warning.
    """
    if arch not in PLATFORMS:
        raise PackageError(f"unknown arch {arch!r}; choose one of: {', '.join(PLATFORMS)}")
    if not re.fullmatch(r"3\.\d{1,2}", python_version):
        raise PackageError(f"python version must look like 3.10, not {python_version!r}")
    if not (source / "index.py").is_file():
        raise PackageError(
            f"{source / 'index.py'} is missing: FunctionGraph's handler index.handler lives there"
        )
    compiler = _bytecode_python(python_version, bytecode_python) if bytecode else None

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

        if compiler is not None:
            entries |= _bytecode(compiler, python_version, Path(tmp) / "stage", entries, source)
        elif bytecode:
            warnings.append(
                f"no Python {python_version} was found to compile the bytecode: the package carries "
                "source only, so each new instance compiles it on its first start (about 0.1 s more). "
                f"Put a python{python_version} on PATH, or name one with --bytecode-python."
            )

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
        bytecode=compiler is not None,
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
