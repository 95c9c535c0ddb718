#!/usr/bin/env bash
# Builds the image from the unchanged Dockerfile, as a user does, on a machine with no Docker
# engine and no registry but Debian's: podman builds it on a Debian base that mmdebstrap makes
# from the machine's own mirror, tagged as the image the Dockerfile's FROM names.
#
#   tests/container/build.sh [IMAGE]      (default localhost/schedule-reconciler:test)
#
# The base is kept between runs, and made again when its recipe, the mirror or the host's CA
# certificates change (or with REBUILD_BASE=1). Prints `timing: PHASE SECONDS` for each phase.
set -euo pipefail
cd "$(dirname "$0")/../.."
image=${1:-localhost/schedule-reconciler:test}
export CONTAINERS_CONF="$PWD/tests/container/containers.conf"
release=bookworm  # python:3.11-slim's Debian, whose python3 is 3.11 too
packages=python3,python3-venv,ca-certificates,tini
certs=/usr/local/share/ca-certificates

now() { date +%s.%N; }
timing() { awk -v phase="$1" -v a="$2" -v b="$(now)" 'BEGIN { printf "timing: %s %.1f\n", phase, b - a }'; }

t=$(now)
missing=()
for pkg in podman runc mmdebstrap; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
timing tools "$t"

# The base: only what the Dockerfile needs from python:3.11-slim (python3 and its venv module),
# plus tini and the CA certificates. Docs, manuals and translations are left out, as in slim images.
t=$(now)
from=$(awk 'toupper($1) == "FROM" { print $2; exit }' Dockerfile)
case "$from" in
  */*/*|localhost/*) base=$from ;;
  */*) base=docker.io/$from ;;
  *) base=docker.io/library/$from ;;
esac
mapfile -t mirrors < <(python3 tests/container/mirror.py "$release")
cert_files=()
[ -d "$certs" ] && mapfile -t cert_files < <(find "$certs" -type f -name '*.crt' | sort)
key=$( { echo "minbase $release $packages v1"; printf '%s\n' "${mirrors[@]}"; cat "${cert_files[@]}" /dev/null; } \
       | sha256sum | cut -c1-16)
label=org.schedule-reconciler.test-base
if [ "${REBUILD_BASE:-0}" != 1 ] && podman image exists "$base" \
   && [ "$(podman image inspect --format "{{index .Config.Labels \"$label\"}}" "$base")" = "$key" ]; then
  echo "base: $base is cached ($key)"
else
  hooks=()
  if [ ${#cert_files[@]} -gt 0 ]; then
    # Outbound TLS may pass a proxy whose CA only the host trusts: pip inside the build needs it.
    hooks+=(--customize-hook="sync-in $certs /usr/local/share/ca-certificates"
            --customize-hook='chroot "$1" update-ca-certificates --fresh >/dev/null 2>&1')
  fi
  mmdebstrap --quiet --variant=minbase --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    "${hooks[@]}" "$release" - "${mirrors[@]}" \
  | podman import --quiet \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' --change "LABEL $label=$key" \
      - "$base" >/dev/null
  echo "base: built $base ($key) from ${mirrors[*]}"
fi
timing base "$t"

t=$(now)
old=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
log=$(mktemp)
revision=$(git rev-parse HEAD 2>/dev/null || true)
# The revision again as --label: buildah 1.28 keys its layer cache on `LABEL …="${REVISION}"`
# unexpanded, so a new commit that copies the same files got the cached label of an older one.
if ! podman build --pull=never --format docker --layers --tag "$image" \
       --build-arg REVISION="$revision" ${revision:+--label "org.opencontainers.image.revision=$revision"} \
       . >"$log" 2>&1; then
  cat "$log"
  rm -f "$log"
  exit 1
fi
rm -f "$log"
new=$(podman image inspect --format '{{.Id}}' "$image")
# The image this tag named before is garbage now (its layers stay cached for the next build).
if [ -n "$old" ] && [ "$old" != "$new" ]; then
  podman rmi "$old" >/dev/null 2>&1 || true
fi
echo "image: $image $new"
timing image "$t"
