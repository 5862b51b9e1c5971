#!/usr/bin/env bash
# The README's first quick-start command: set the host up, install brics-env, and bring up
# dev_dummyauth with working defaults (deploy directory deploy/dev_dummyauth, made by init).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-host.sh
npm ci --no-audit --no-fund

exec npx --no-install brics-env up dev_dummyauth "$@"
