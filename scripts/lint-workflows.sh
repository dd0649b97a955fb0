#!/usr/bin/env bash
# Security and correctness lint of the GitHub workflows we run and document: zizmor (offline
# audits: unpinned actions, persisted credentials, template injection, excessive permissions…)
# and actionlint (syntax, expressions, deprecated runtimes). Also zizmor over action.yml.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="$(scripts/ci-tools.sh)"
workflows=(.github/workflows/*.yml docs/examples/github-*.yml)
echo "zizmor: ${workflows[*]} action.yml"
"$bin/zizmor" --offline --no-progress "${workflows[@]}" action.yml
echo "actionlint: ${workflows[*]}"
"$bin/actionlint" "${workflows[@]}"
echo "workflow lint: ok"
