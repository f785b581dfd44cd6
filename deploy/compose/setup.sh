#!/usr/bin/env bash
# Prepare the compose stack's secrets: each container gets only what it needs, owned by the
# images' user (uid 10001), keys 0600. Safe to run again: what exists is kept.
#
#   deploy/compose/setup.sh            # then: docker compose -f deploy/compose/compose.yaml up --build
#
# Writes, beside compose.yaml (or under $OUT):
#   secrets/control-plane/  ca.crt, control-plane.crt/.key          mounted into the control plane
#   secrets/edge-N/         ca.crt, edge-N.crt/.key                  mounted into edge-N only
#   secrets/ops/            ca.crt, ops.crt/.key, admin-token        for operators on the host
#   ca/                     the CA (ca.key)                          mounted nowhere
#   signing/                the model-signing key pair               mounted nowhere
#   .env                    SENTIEDGE_ADMIN_TOKENS, _PSEUDONYM_KEY, _TRUSTED_KEY (read by compose)
# and signs the bundle the images ship ($BUNDLE, default models/sentiment-cascade).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${OUT:-$HERE}"
BUNDLE="${BUNDLE:-$ROOT/models/sentiment-cascade}"
EDGES="${EDGES:-edge-1 edge-2 edge-3}"
IMAGE_UID="${IMAGE_UID:-10001}"
CLI="${CONTROL_PLANE:-}"
if [ -z "$CLI" ]; then
    if [ -x "$ROOT/.venv/bin/control-plane" ]; then CLI="$ROOT/.venv/bin/control-plane"
    elif command -v control-plane >/dev/null; then CLI="$(command -v control-plane)"
    else echo "setup.sh: no control-plane command: run 'make install' first (or set CONTROL_PLANE)" >&2; exit 2; fi
fi
say() { echo "setup.sh: $*"; }

umask 077
mkdir -p "$OUT/ca" "$OUT/signing" "$OUT/secrets/ops"
if [ ! -f "$OUT/ca/ca.key" ]; then
    "$CLI" certs init --dir "$OUT/ca" --host control-plane >/dev/null
    say "created the CA in $OUT/ca"
fi
issue() {  # issue IDENTITY [--operator]: into ca/, once
    [ -f "$OUT/ca/$1.crt" ] || "$CLI" certs issue "$@" --dir "$OUT/ca" >/dev/null
}
place() {  # place DIR FILE...: copy from ca/ into one container's directory
    local dir="$OUT/secrets/$1"; shift
    mkdir -p "$dir"
    for f in "$@"; do [ -f "$dir/$f" ] || cp "$OUT/ca/$f" "$dir/$f"; done
}

place control-plane ca.crt control-plane.crt control-plane.key
for edge in $EDGES; do
    issue "$edge"
    place "$edge" ca.crt "$edge.crt" "$edge.key"
done
issue ops --operator
place ops ca.crt ops.crt ops.key

if [ ! -f "$OUT/signing/release" ]; then
    "$CLI" models keygen "$OUT/signing/release" | sed -n 's/.*EDGE_TRUSTED_KEYS=//p' > "$OUT/signing/trusted-key"
    say "created the signing key $OUT/signing/release (keep it off the control plane)"
fi
"$CLI" models sign "$BUNDLE" --key "$OUT/signing/release" >/dev/null
say "signed $BUNDLE"

random_hex() { python3 -c "import secrets, sys; print(secrets.token_hex(int(sys.argv[1])))" "$1"; }
if [ ! -f "$OUT/.env" ]; then
    token="$(random_hex 24)"
    trusted="$(cat "$OUT/signing/trusted-key")"
    {
        echo "SENTIEDGE_ADMIN_TOKENS=ops:$token"
        echo "SENTIEDGE_PSEUDONYM_KEY=$(random_hex 32)"
        echo "SENTIEDGE_TRUSTED_KEY=$trusted"
        echo "COMPOSE_PROJECT_NAME=sentiedge"
    } > "$OUT/.env"
    echo "$token" > "$OUT/secrets/ops/admin-token"
    say "wrote $OUT/.env (operator token in secrets/ops/admin-token)"
fi

# The containers run as uid $IMAGE_UID: their directories must be theirs, readable by no one else.
for dir in "$OUT"/secrets/*/; do
    name="$(basename "$dir")"
    [ "$name" = ops ] && continue  # the operator's, on the host
    chmod 0500 "$dir"
    chmod 0400 "$dir"/*
    if [ "$(id -u)" = 0 ]; then
        chown -R "$IMAGE_UID:$IMAGE_UID" "$dir"
    elif command -v podman >/dev/null && podman unshare true 2>/dev/null; then
        podman unshare chown -R "$IMAGE_UID:$IMAGE_UID" "$dir"  # rootless podman: the user namespace's uid
    else
        echo "setup.sh: cannot give $dir to uid $IMAGE_UID as $(id -un): run 'sudo chown -R $IMAGE_UID:$IMAGE_UID $OUT/secrets/{control-plane,edge-*}'" >&2
        exit 3
    fi
done
say "ready: docker compose -f $HERE/compose.yaml up --build"
say "operators: control-plane --target 127.0.0.1:50051 --ca $OUT/secrets/ops/ca.crt --cert $OUT/secrets/ops/ops.crt --key $OUT/secrets/ops/ops.key --token \$(cat $OUT/secrets/ops/admin-token) nodes"
