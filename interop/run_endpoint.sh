#!/usr/bin/env bash
# Entry point of Harrier's interop-runner server image (and of the docker-free harness).
# The runner sets ROLE, TESTCASE, SERVER_PARAMS, SSLKEYLOGFILE and QLOGDIR, mounts /www,
# /certs and /downloads, and collects /logs. See interop/README.md.
set -e

# In the runner's endpoint image, /setup.sh configures routes to the simulator.
if [ -f /setup.sh ]; then
  # shellcheck disable=SC1091
  . /setup.sh
fi

here=$(cd "$(dirname "$0")" && pwd)
# In the image the repository is at /harrier and this script at /run_endpoint.sh.
if [ -f "$here/server.js" ]; then server_js="$here/server.js"; else server_js=/harrier/interop/server.js; fi

case "${ROLE:-server}" in
  server)
    mkdir -p "${LOGS:-/logs}" 2>/dev/null || true
    [ -n "${QLOGDIR:-}" ] && mkdir -p "$QLOGDIR"
    echo "harrier: TESTCASE=${TESTCASE:-} SERVER_PARAMS=${SERVER_PARAMS:-}"
    # exec: node gets the runner's SIGTERM directly (graceful shutdown, exit 0).
    # shellcheck disable=SC2086
    exec node "$server_js" ${SERVER_PARAMS:-}
    ;;
  client)
    echo "harrier is a server-only interop endpoint"
    exit 127
    ;;
  *)
    echo "unknown ROLE '${ROLE}'"
    exit 1
    ;;
esac
