"""scripts/deploy end to end: terraform present (a recording stand-in) or absent, and secrets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

from tests.support.fresh_process import run_command

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "scripts" / "deploy"
PACKAGE = ROOT / "scripts" / "package"
ZIP_NAME = "cloudeye-event-forwarder.zip"


@pytest.fixture
def code_zip(tmp_path: Path) -> Path:
    """A stand-in code package, so these tests need no pip run."""
    path = tmp_path / "dist" / ZIP_NAME
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("index.py", "def handler(event, context):\n    return {}\n")
    return path


@pytest.fixture
def fake_terraform(tmp_path: Path) -> tuple[Path, Path]:
    """A `terraform` that records its arguments and working directory; returns (bin dir, log)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "terraform.log"
    script = bin_dir / "terraform"
    script.write_text(
        f'#!/bin/sh\necho "$(pwd) $*" >> "{log}"\nif [ "$1" = plan ]; then echo plan > tfplan; fi\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    return bin_dir, log


def run(
    args: list[str],
    *,
    path: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    script: Path = DEPLOY,
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {}), "PATH": path}
    return run_command([sys.executable, str(script), *args], env=full_env, cwd=cwd or ROOT)


def test_help_runs_from_the_shebang() -> None:
    for script, words in ((DEPLOY, "--dry-run"), (PACKAGE, "--runtime")):
        proc = subprocess.run(
            [str(script), "--help"], capture_output=True, text=True, check=False, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert words in proc.stdout
        assert "examples:" in proc.stdout


def test_dry_run_renders_only(tmp_path: Path, fake_terraform: tuple[Path, Path]) -> None:
    bin_dir, log = fake_terraform
    out = tmp_path / "tf"
    proc = run(["--dry-run", "--out", str(out)], path=str(bin_dir))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["main.tf.json"]
    assert not log.exists()
    json.loads((out / "main.tf.json").read_text(encoding="utf-8"))


def test_without_terraform_it_prints_what_to_run(tmp_path: Path, code_zip: Path) -> None:
    out = tmp_path / "tf"
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    proc = run(
        ["--out", str(out), "--zip", str(code_zip), "--var", "agency_name=cloudeye-forwarder"],
        path=str(empty),
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [ZIP_NAME, "main.tf.json"]
    text = proc.stdout
    steps = (
        "terraform is not on PATH",
        "terraform init",
        "terraform plan -out=tfplan -var agency_name=cloudeye-forwarder",
        "terraform apply tfplan",
        "export TF_VAR_ingest_token=",
        "export TF_VAR_kafka_password=",
    )
    assert [step for step in steps if step not in text] == []
    assert "TF_VAR_agency_name" not in text  # given with --var
    assert "TF_VAR_region" not in text  # has a default
    assert "RFS" in text
    assert "zip -q" in text


def test_with_terraform_it_runs_init_plan_apply(
    tmp_path: Path, code_zip: Path, fake_terraform: tuple[Path, Path]
) -> None:
    bin_dir, log = fake_terraform
    out = tmp_path / "tf"
    proc = run(
        ["--out", str(out), "--zip", str(code_zip), "--auto-approve", "--var", "vpc_id=vpc-1"],
        path=str(bin_dir),
    )
    assert proc.returncode == 0, proc.stderr
    assert log.read_text(encoding="utf-8").splitlines() == [
        f"{out} init -input=false",
        f"{out} plan -out=tfplan -var vpc_id=vpc-1",
        f"{out} apply -input=false tfplan",
    ]
    assert (out / ZIP_NAME).read_bytes() == code_zip.read_bytes()
    assert not (out / "tfplan").exists()  # it held the secrets


def test_without_a_terminal_it_stops_after_the_plan(
    tmp_path: Path, code_zip: Path, fake_terraform: tuple[Path, Path]
) -> None:
    bin_dir, log = fake_terraform
    proc = run(["--out", str(tmp_path / "tf"), "--zip", str(code_zip)], path=str(bin_dir))
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[1] for line in log.read_text(encoding="utf-8").splitlines()] == ["init", "plan"]
    assert "--auto-approve" in proc.stdout
    assert "keep it private" in proc.stdout


@pytest.mark.parametrize(
    ("var", "words"),
    [
        ("ingest_token=hunter2", "export TF_VAR_ingest_token instead"),
        ("nope=1", "no such variable"),
        ("agency_name", "expected NAME=VALUE"),
    ],
)
def test_bad_var_is_refused_before_anything_is_written(tmp_path: Path, var: str, words: str) -> None:
    out = tmp_path / "tf"
    proc = run(["--out", str(out), "--var", var, "--dry-run"], path=str(tmp_path))
    assert proc.returncode == 2
    assert words in proc.stderr
    assert not out.exists()
    assert "hunter2" not in proc.stderr


def test_zip_must_carry_the_function_name(tmp_path: Path) -> None:
    other = tmp_path / "other.zip"
    shutil.copyfile(__file__, other)
    out = tmp_path / "tf"
    proc = run(["--out", str(out), "--zip", str(other)], path=str(tmp_path))
    assert proc.returncode == 1
    assert ZIP_NAME in proc.stderr
    assert not out.exists()


# Credentials and secrets a deploying user may have in the environment.
SECRET_VARIABLES = (
    "TF_VAR_ingest_token", "TF_VAR_kafka_password", "FORWARDER_INGEST_TOKEN", "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN", "CLOUDEYE_AUTH_TOKEN", "HW_ACCESS_KEY",
    "HW_SECRET_KEY", "HW_SECURITY_TOKEN",
)  # fmt: skip


@pytest.mark.parametrize("terraform", ["present", "absent", "dry-run"])
def test_no_secret_from_the_environment_is_written(
    tmp_path: Path, code_zip: Path, fake_terraform: tuple[Path, Path], terraform: str
) -> None:
    # GIVEN distinctive secret values in the environment
    secrets = {name: f"s3cr3t-{name.lower()}-{uuid.uuid4().hex}" for name in SECRET_VARIABLES}
    bin_dir, _ = fake_terraform
    out = tmp_path / "tf"
    args = ["--out", str(out)]
    args += ["--dry-run"] if terraform == "dry-run" else ["--zip", str(code_zip), "--auto-approve"]
    # WHEN the deployment is rendered (and terraform, if any, is run)
    proc = run(args, path=str(bin_dir if terraform == "present" else tmp_path), env=secrets)
    assert proc.returncode == 0, proc.stderr
    # THEN no value appears in any file written, nor in what was printed
    written = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert out / "main.tf.json" in written
    for name, value in secrets.items():
        for path, content in written.items():
            assert value.encode() not in content, f"{name} leaked into {path}"
        assert value not in proc.stdout + proc.stderr, f"{name} leaked into the output"
    doc = json.loads((out / "main.tf.json").read_text(encoding="utf-8"))
    assert doc["variable"]["ingest_token"] == {
        "type": "string",
        "description": "Bearer token HTTP callers must send (FORWARDER_INGEST_TOKEN).",
        "sensitive": True,
    }
    assert "FORWARDER_INGEST_TOKEN" not in doc["locals"]["user_data"]
