"""Deploy tooling: template.yaml -> validated template -> Terraform JSON, and the code zip.

Modules: `template` (load and validate), `terraform` (render main.tf.json), `package` (build the
zip), `cli` (the `scripts/deploy` and `scripts/package` entry points). Nothing is imported here so
that `scripts/package` does not pay for jsonschema.
"""
