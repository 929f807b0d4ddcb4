#!/bin/sh
# Writes the secrets the instances share into cluster.env (mode 0600), once; never commit that file.
#
#   cd deploy/cluster && ./generate-secrets.sh && docker compose up --build
#
# GS_CLUSTER_KEY       authenticates the calls the instances forward to each other (and the Network Server's calls)
# GS_UPLINK_TOKEN_KEY  signs uplink tokens, so a downlink for an uplink one instance received verifies on another
# GS_REDIS_URL         the shared Redis, with its password (REDIS_PASSWORD, which the redis service requires)
# An existing file is kept: new keys would break downlinks for uplinks already sent and the Network Server's key.
set -eu
out="${1:-cluster.env}"
if [ -e "$out" ]; then
    echo "$out exists; keeping it (delete it first to make new secrets)" >&2
    exit 0
fi
hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
redis_password="$(hex 24)"
umask 077
cat >"$out" <<END
GS_CLUSTER_KEY=$(hex 32)
GS_UPLINK_TOKEN_KEY=$(hex 32)
REDIS_PASSWORD=$redis_password
GS_REDIS_URL=redis://:$redis_password@redis:6379/0
END
echo "wrote $out (mode 0600); give the Network Server the same GS_CLUSTER_KEY" >&2
