"""Command lines behind `scripts/package` and `scripts/deploy`."""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from deploy.package import (
    DEFAULT_RUNTIME,
    PLATFORMS,
    ROOT,
    RUNTIMES,
    PackageError,
    build_package,
    copy_package,
    python_version_for,
)

if TYPE_CHECKING:
    from deploy.template import Template

DEFAULT_TEMPLATE = ROOT / "template.yaml"
DEFAULT_DIST = ROOT / "dist"
DEFAULT_OUT = ROOT / "build" / "terraform"
DEFAULT_NAME = "cloudeye-event-forwarder"


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _rel(path: Path) -> str:
    """A path as the user would type it from the current directory."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# --- scripts/package ----------------------------------------------------------------------------

PACKAGE_EPILOG = """\
examples:
  scripts/package                              # runtime, arch and name from template.yaml
  scripts/package --runtime Python3.12 --arch arm64
  scripts/package --python-version 3.11        # a zip for this machine's Python (local tests only)

The zip holds function/ at its root plus the packages of requirements.txt, installed by pip as
wheels for the target interpreter and CPU (never this machine's), and their bytecode compiled by a
Python of the target version (this one, pythonX.Y on PATH or --bytecode-python), so new instances
start without compiling; without such a Python it holds source only and warns. Tests and caches
are left out. It fails when the zip is over 50 MB or unpacks to over 1500 MB (FunctionGraph's
limits for code sent through the API).
"""


def _parser(prog: str, description: str, epilog: str, template_help: str) -> argparse.ArgumentParser:
    """A command's parser with its ``--template`` option."""
    raw = argparse.RawDescriptionHelpFormatter  # the epilog's examples keep their lines
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog, formatter_class=raw)
    parser.add_argument(
        "--template",
        type=Path,
        default=DEFAULT_TEMPLATE,
        help=f"deploy template{template_help} (default: template.yaml in the repository)",
    )
    return parser


def package_parser() -> argparse.ArgumentParser:
    parser = _parser(
        "scripts/package",
        "Build dist/<name>.zip, the FunctionGraph code package of the forwarder.",
        PACKAGE_EPILOG,
        " giving the defaults for --name, --runtime and --arch",
    )
    parser.add_argument(
        "--runtime",
        choices=sorted(RUNTIMES),
        help=f"FunctionGraph runtime to build for (template's, else {DEFAULT_RUNTIME})",
    )
    parser.add_argument(
        "--arch", choices=sorted(PLATFORMS), help="CPU of the function (template's, else x86_64)"
    )
    parser.add_argument(
        "--python-version",
        metavar="X.Y",
        help="build for this CPython version instead of the runtime's; for local tests with a "
        "Python that FunctionGraph does not offer",
    )
    parser.add_argument(
        "--name", help=f"zip file name without .zip (template's function name, else {DEFAULT_NAME})"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_DIST, help="output directory (default: dist/ in the repository)"
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=ROOT / "function",
        help="code root, zipped as-is (default: function/ in the repository)",
    )
    parser.add_argument(
        "--requirements",
        type=Path,
        default=ROOT / "requirements.txt",
        help="runtime dependencies (default: requirements.txt in the repository)",
    )
    parser.add_argument("--cache-dir", type=Path, help="pip cache directory (default: pip's own)")
    bytecode = parser.add_mutually_exclusive_group()
    bytecode.add_argument(
        "--bytecode-python",
        metavar="PATH",
        help="interpreter of the target version to compile the bytecode with (default: this one "
        "if it is that version, else pythonX.Y on PATH)",
    )
    bytecode.add_argument(
        "--no-bytecode",
        action="store_true",
        help="ship source only: each new instance then compiles it on its first start",
    )
    return parser


def _template_defaults(path: Path, *, explicit: bool) -> dict[str, str]:
    """name/runtime/arch from the template; {} when there is no template to read."""
    from deploy.template import load_template

    if not path.exists() and not explicit:
        return {}
    fn = load_template(path).function
    return {"name": fn["name"], "runtime": fn["runtime"], "arch": fn["arch"]}


def package_main(argv: list[str] | None = None) -> int:
    args = package_parser().parse_args(argv)
    from deploy.template import TemplateError

    defaults: dict[str, str] = {}
    if args.name is None or args.runtime is None or args.arch is None:
        try:
            defaults = _template_defaults(args.template, explicit=args.template != DEFAULT_TEMPLATE)
        except TemplateError as e:
            return _fail(str(e))
    runtime = args.runtime or defaults.get("runtime", DEFAULT_RUNTIME)
    arch = args.arch or defaults.get("arch", "x86_64")
    name = args.name or defaults.get("name", DEFAULT_NAME)
    try:
        python_version = args.python_version or python_version_for(runtime)
        result = build_package(
            name=name,
            out_dir=args.out,
            python_version=python_version,
            arch=arch,
            source=args.source,
            requirements=args.requirements,
            cache_dir=args.cache_dir,
            bytecode=not args.no_bytecode,
            bytecode_python=args.bytecode_python,
        )
    except PackageError as e:
        return _fail(str(e), 1)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(result.summary())
    return 0


# --- scripts/deploy -----------------------------------------------------------------------------

DEPLOY_EPILOG = """\
examples:
  scripts/deploy --dry-run                     # validate template.yaml and render only
  TF_VAR_ingest_token=... TF_VAR_kafka_password=... scripts/deploy --var agency_name=cloudeye-forwarder

Steps: validate template.yaml (every bad field is reported with its line; nothing is written),
build dist/<name>.zip if it is missing, render build/terraform/main.tf.json next to a copy of the
zip, then run terraform init, plan and apply there. Without terraform on PATH it prints the commands
to run, and how to make an RFS stack of the same directory instead.

Credentials for Terraform come from HW_ACCESS_KEY / HW_SECRET_KEY in the environment. Sensitive
variables (secrets) only as TF_VAR_<name> in the environment: they are never written to a file.
"""


def deploy_parser() -> argparse.ArgumentParser:
    parser = _parser(
        "scripts/deploy",
        "Deploy the forwarder to FunctionGraph from template.yaml, through Terraform.",
        DEPLOY_EPILOG,
        "",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="directory for main.tf.json and the zip (default: build/terraform/ in the repository)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate and render main.tf.json only: no package build, no terraform",
    )
    parser.add_argument(
        "--zip",
        type=Path,
        help="code package to deploy (default: dist/<function name>.zip, built when missing)",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the code package even if it exists")
    parser.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="value of a non-sensitive variable, passed to terraform plan (repeatable)",
    )
    parser.add_argument("--auto-approve", action="store_true", help="apply the plan without asking")
    parser.add_argument("--cache-dir", type=Path, help="pip cache directory for the package build")
    return parser


def _parse_vars(pairs: list[str], template: Template) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--var {pair!r}: expected NAME=VALUE")
        if name not in template.variables:
            raise ValueError(
                f"--var {name}: no such variable in {template.path.name} "
                f"(declared: {', '.join(template.variables)})"
            )
        if name in template.sensitive_variables:
            raise ValueError(
                f"--var {name}: a sensitive variable; export TF_VAR_{name} instead so the value "
                "stays out of the process list and shell history"
            )
        values[name] = value
    return values


def _ensure_package(args: argparse.Namespace, template: Template) -> Path:
    fn = template.function
    zip_path = args.zip or DEFAULT_DIST / template.zip_name
    if args.zip is not None and not zip_path.is_file():
        raise PackageError(f"--zip {zip_path}: no such file")
    if args.zip is not None and zip_path.name != template.zip_name:
        raise PackageError(f"--zip {zip_path}: expected a file named {template.zip_name} (function.name)")
    if args.zip is None and (args.rebuild or not zip_path.is_file()):
        print(f"building {_rel(zip_path)} for {fn['runtime']} on {fn['arch']} ...")
        result = build_package(
            name=fn["name"],
            out_dir=zip_path.parent,
            python_version=python_version_for(fn["runtime"]),
            arch=fn["arch"],
            cache_dir=args.cache_dir,
        )
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(result.summary())
    return zip_path


def deploy_main(argv: list[str] | None = None) -> int:
    args = deploy_parser().parse_args(argv)
    from deploy.template import TemplateError, load_template
    from deploy.terraform import render, write

    try:
        template = load_template(args.template)
    except TemplateError as e:
        return _fail(f"{e}\nnothing was written.")
    try:
        var_values = _parse_vars(args.var, template)
    except ValueError as e:
        return _fail(str(e))
    for warning in template.warnings:
        print(f"warning: {warning}", file=sys.stderr)

    doc = render(template)
    uses_zip = template.function["code"]["source"] == "zip"
    zip_path = None
    if uses_zip and not args.dry_run:
        try:
            zip_path = _ensure_package(args, template)
        except PackageError as e:
            return _fail(f"{e}\nnothing was written to {_rel(args.out)}.", 1)
    target = write(doc, args.out)
    if zip_path is not None:
        copy_package(zip_path, args.out)
    print(f"rendered {_rel(target)}")

    if args.dry_run:
        note = "dry run: no package build, terraform not run."
        if uses_zip:
            note += (
                f" main.tf.json reads {template.zip_name} from its own directory: scripts/deploy without "
                "--dry-run puts it there."
            )
        print(note)
        return 0
    terraform = shutil.which("terraform")
    if terraform is None:
        print(_manual_steps(template, args.out, var_values, uses_zip))
        return 0
    return _run_terraform(terraform, args.out, var_values, auto_approve=args.auto_approve)


def _var_flags(values: dict[str, str]) -> list[str]:
    return [arg for name, value in values.items() for arg in ("-var", f"{name}={value}")]


def _run_terraform(terraform: str, workdir: Path, var_values: dict[str, str], *, auto_approve: bool) -> int:
    steps = [
        [terraform, "init", "-input=false"],
        [terraform, "plan", "-out=tfplan", *_var_flags(var_values)],
    ]
    for cmd in steps:
        print(f"$ {shlex.join(['terraform', *cmd[1:]])}", flush=True)
        code = subprocess.run(cmd, cwd=workdir, check=False).returncode
        if code != 0:
            return _fail(f"terraform {cmd[1]} failed (exit {code})", code)
    if not auto_approve:
        if not sys.stdin.isatty():
            print(
                f"plan saved as {_rel(workdir / 'tfplan')} (it holds the secrets in clear: keep it private); "
                f"not applying without a terminal. Re-run with --auto-approve, or: cd {_rel(workdir)} && "
                "terraform apply tfplan"
            )
            return 0
        answer = input("Apply this plan? Only 'yes' applies: ")
        if answer.strip() != "yes":
            print("not applied.")
            return 0
    print("$ terraform apply tfplan", flush=True)
    code = subprocess.run([terraform, "apply", "-input=false", "tfplan"], cwd=workdir, check=False).returncode
    if code != 0:
        return _fail(f"terraform apply failed (exit {code})", code)
    # A saved plan holds the values of sensitive variables in clear: do not leave it lying around.
    (workdir / "tfplan").unlink(missing_ok=True)
    return 0


def _manual_steps(template: Template, out: Path, var_values: dict[str, str], uses_zip: bool) -> str:
    from deploy.terraform import variables_without_default

    needed = [name for name in variables_without_default(template) if name not in var_values]
    exports = [
        f"     export TF_VAR_{name}='...'   # {template.variables[name]['description']}" for name in needed
    ]
    plan = shlex.join(["terraform", "plan", "-out=tfplan", *_var_flags(var_values)])
    lines = [
        "terraform is not on PATH, so nothing was applied. To apply with Terraform (>= 1.3):",
        "  1. install it: https://developer.hashicorp.com/terraform/install",
        "  2. give the provider credentials of the deploying IAM user, and the variables without a default:",
        "     export HW_ACCESS_KEY='...' HW_SECRET_KEY='...'",
        *exports,
        "  3. run:",
        f"     cd {shlex.quote(_rel(out))}",
        "     terraform init",
        f"     {plan}",
        "     terraform apply tfplan",
        "",
        "Or as an RFS (Resource Formation Service) stack, which runs the same Terraform JSON:",
    ]
    step = 1
    if uses_zip:
        lines += [
            f"  {step}. an RFS template may be at most 1 MB, so the code must come from OBS: upload "
            f"dist/{template.zip_name} to an OBS bucket, set function.code.source: obs and "
            "function.code.obs_url in the template, and run scripts/deploy --dry-run again",
        ]
        step += 1
    lines += [
        f"  {step}. zip the directory (without any .tfvars file):",
        f"     (cd {shlex.quote(_rel(out))} && zip -q ../{template.function['name']}-rfs.zip main.tf.json)",
        f"  {step + 1}. in the RFS console, create a stack from that zip and fill in the variables; "
        "choose an agency that lets RFS create FunctionGraph resources",
    ]
    return "\n".join(lines)
