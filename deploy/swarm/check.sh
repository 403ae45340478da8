#!/usr/bin/env bash
# A real two-node Docker Swarm on one machine, under a steady load through the proxy, showing:
#   1. a rolling update to a new image tag fails no request;
#   2. when the second node's engine stops, its replicas start again on the first one and
#      requests keep succeeding;
#   3. an update whose replicas never become healthy rolls back by itself.
# The second node is a second dockerd in its own network namespace, joined to the host by a
# veth pair and a bridge. The kernel here has no IPVS, so the stack runs with stack.no-ipvs.yml.
# Run as root on Debian: bash deploy/swarm/check.sh. Everything it makes is removed at the end,
# also after a failure or Ctrl-C; it ends with one summary line and exits 0 only if all three hold.
set -euo pipefail
cd "$(dirname "$0")/../.."

export DEBIAN_FRONTEND=noninteractive DOCKER_BUILDKIT=0 COMPOSE_BAKE=false

# Fixed names, so that the leftovers of a run killed outright are found and removed by the next.
readonly state=/tmp/digitserve-swarm
readonly netns=dsw-node2 bridge=dsw-br0 veth_host=dsw-veth0 veth_node2=dsw-veth1
readonly firewall_tag=digitserve-swarm-check
# Addresses, all in 198.18.0.0/15 (set aside for network tests): the link between the engines,
# the second engine's own bridges, each engine's docker_gwbridge, and the swarm's overlays.
readonly manager_ip=198.18.0.1 node2_ip=198.18.0.2
readonly node2_bip=198.18.1.1/24 node2_pool=198.18.64.0/20
readonly manager_gwbridge=198.18.10.0/24 node2_gwbridge=198.18.11.0/24
readonly overlay_pool=198.19.0.0/16
readonly node2_sock="unix://$state/node2.sock"
readonly port=${DIGITSERVE_PROXY_PORT:-18080}
readonly base_image=localhost/python:3.11-slim-ci
readonly v1=digitserve:check-v1 v2=digitserve:check-v2 broken=digitserve:check-broken
readonly proxy_image=digitserve-proxy:check
readonly stack=digitserve service=digitserve_digitserve
# Requests a second from the load generator: steady, and light next to the three replicas.
readonly rate=20

node2=(docker -H "$node2_sock")
host_dockerd_pid="" node2_dockerd_pid="" load_pid="" copy_pid="" made_gwbridge="" deployed=""

log() { echo "swarm check: $*"; }
fail() { echo "swarm check FAILED: $*" >&2; exit 1; }

# Runs a command with its output kept aside, shown only if it fails.
quietly() {
  local name=$1
  shift
  "$@" > "$state/$name.log" 2>&1 || { tail -20 "$state/$name.log" >&2; fail "$name: $*"; }
}
now() { echo "$EPOCHREALTIME"; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", b - a }'; }

remove_everything() {
  set +e
  [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null
  [ -n "$copy_pid" ] && kill "$copy_pid" 2>/dev/null
  if [ -n "$deployed" ]; then
    docker stack rm "$stack" >/dev/null 2>&1
    for _ in $(seq 1 60); do
      [ -z "$(docker ps -q --filter "label=com.docker.stack.namespace=$stack")" ] && break
      sleep 1
    done
  fi
  if "${node2[@]}" info >/dev/null 2>&1; then
    "${node2[@]}" swarm leave --force >/dev/null 2>&1
  fi
  stop_node2
  if docker info >/dev/null 2>&1; then
    leave_our_swarm
    # Leaving removes the stack's stopped containers, which hold on to the images below.
    for _ in $(seq 1 30); do
      [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$stack")" ] && break
      sleep 1
    done
    if [ -n "$made_gwbridge" ]; then
      docker network rm docker_gwbridge >/dev/null 2>&1
    fi
    docker rmi "$v1" "$v2" "$broken" "$proxy_image" >/dev/null 2>&1
  fi
  # The second engine's memory file system, and what a dockerd killed outright left mounted.
  awk -v dir="$state/" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n 1 umount -l
  rm -rf "$state"
  ip netns delete "$netns" 2>/dev/null
  ip link delete "$bridge" 2>/dev/null
  ip link delete "$veth_host" 2>/dev/null
  while iptables -D INPUT -i "$bridge" -m comment --comment "$firewall_tag" -j ACCEPT 2>/dev/null; do :; done
  if [ -n "$host_dockerd_pid" ]; then
    kill "$host_dockerd_pid" 2>/dev/null
    wait "$host_dockerd_pid" 2>/dev/null
  fi
}

# The host engine leaves the swarm only if it is the one made here (its address is ours).
leave_our_swarm() {
  if [ "$(docker info --format '{{.Swarm.NodeAddr}}' 2>/dev/null)" = "$manager_ip" ]; then
    docker swarm leave --force >/dev/null 2>&1
  fi
}

stop_node2() {
  local pid=$node2_dockerd_pid
  [ -z "$pid" ] && [ -f "$state/node2/dockerd.pid" ] && pid=$(cat "$state/node2/dockerd.pid")
  [ -z "$pid" ] && return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  node2_dockerd_pid=""
}

install_tools() {
  local missing=""
  command -v dockerd >/dev/null || missing+=" docker.io"
  command -v debootstrap >/dev/null || missing+=" debootstrap"
  command -v curl >/dev/null || missing+=" curl"
  command -v ip >/dev/null || missing+=" iproute2"
  command -v iptables >/dev/null || missing+=" iptables"
  if [ -n "$missing" ]; then
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
}

start_host_engine() {
  if ! docker info >/dev/null 2>&1; then
    # An engine still stopping (the container test stops its own just before) must be gone first.
    local old
    old=$(cat /var/run/docker.pid 2>/dev/null || true)
    if [ -n "$old" ]; then
      for _ in $(seq 1 150); do kill -0 "$old" 2>/dev/null || break; sleep 0.2; done
    fi
    mkdir -p "$state"
    dockerd > "$state/dockerd-host.log" 2>&1 &
    host_dockerd_pid=$!
    for _ in $(seq 1 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
    docker info >/dev/null 2>&1 || { tail -20 "$state/dockerd-host.log" >&2; fail "the host's dockerd did not start"; }
  fi
  # A swarm left by a run that was killed outright goes; any other one is not ours to touch.
  leave_our_swarm || true
  if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != inactive ]; then
    fail "this engine is already in a swarm; leave it first (docker swarm leave --force)"
  fi
}

# The base image and the service image, the way .ci/container-test.sh makes them. A base image
# already here is reused only when it trusts the same extra CA certificates as this machine
# (the reason CI builds it in every run); then the service image comes from the build cache.
build_service_image() {
  local host_cas image_cas base_root
  host_cas=$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null | sha256sum)
  image_cas=""
  if docker image inspect "$base_image" >/dev/null 2>&1; then
    image_cas=$(docker run --rm --entrypoint sh "$base_image" -c 'cat /usr/local/share/ca-certificates/*.crt 2>/dev/null | sha256sum') || true
  fi
  if [ "$image_cas" != "$host_cas" ]; then
    log "making the local base image $base_image"
    base_root="$state/base"
    mkdir -p "$base_root"
    local mirror
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    quietly debootstrap debootstrap --variant=minbase --include=ca-certificates,python3,python3-venv bookworm "$base_root" ${mirror:+"$mirror"}
    cp /usr/local/share/ca-certificates/*.crt "$base_root/usr/local/share/ca-certificates/" 2>/dev/null || true
    quietly ca-certificates chroot "$base_root" update-ca-certificates
    ln -sf /usr/bin/python3 "$base_root/usr/local/bin/python"
    tar -C "$base_root" -c . | docker import --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
      --change 'CMD ["python3"]' - "$base_image" >/dev/null
    rm -rf "$base_root"
  fi
  if ! docker compose version >/dev/null 2>&1; then
    local compose_bin
    compose_bin="$(.venv/bin/python -c 'import compose, os; print(os.path.dirname(compose.__file__))')/docker-compose"
    mkdir -p "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    cp "$compose_bin" "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose"
  fi
  quietly build env BASE_IMAGE="$base_image" docker compose build digitserve
}

start_node2() {
  ip netns add "$netns"
  ip link add "$bridge" type bridge
  ip addr add "$manager_ip/24" dev "$bridge"
  ip link set "$bridge" up
  ip link add "$veth_host" type veth peer name "$veth_node2"
  ip link set "$veth_host" master "$bridge" up
  ip link set "$veth_node2" netns "$netns"
  ip -n "$netns" addr add "$node2_ip/24" dev "$veth_node2"
  ip -n "$netns" link set "$veth_node2" up
  ip -n "$netns" link set lo up
  # Swarm's control (2377), gossip (7946) and overlay (4789) traffic reach the host over the bridge.
  iptables -I INPUT -i "$bridge" -m comment --comment "$firewall_tag" -j ACCEPT

  # The second engine keeps its images in memory: removing a disk copy of the 2.4 GB image took
  # up to 80 s while the disk was still writing out the build; unmounting takes no time.
  mkdir -p "$state/node2"
  mount -t tmpfs -o size=6g,mode=0700 digitserve-swarm-node2 "$state/node2"
  echo '{}' > "$state/node2/daemon.json"
  # nsenter enters only the network namespace; `ip netns exec` would also remount /sys, and
  # dockerd then finds no devices cgroup.
  nsenter --net="/run/netns/$netns" dockerd --config-file "$state/node2/daemon.json" \
    --data-root "$state/node2/data" --exec-root "$state/node2/exec" --pidfile "$state/node2/dockerd.pid" \
    -H "$node2_sock" --bip "$node2_bip" --default-address-pool "base=$node2_pool,size=24" \
    > "$state/node2/dockerd.log" 2>&1 &
  node2_dockerd_pid=$!
  for _ in $(seq 1 100); do "${node2[@]}" info >/dev/null 2>&1 && break; sleep 0.2; done
  "${node2[@]}" info >/dev/null 2>&1 || { tail -20 "$state/node2/dockerd.log" >&2; fail "the second dockerd did not start"; }
}

# docker_gwbridge (each node's way out of the overlays, and where host-mode ports land) is made
# here, before the swarm does, so that its subnet is one of ours. Usage: make_gwbridge SUBNET DOCKER...
make_gwbridge() {
  local subnet=$1
  shift
  "$@" network create --driver bridge --subnet "$subnet" \
    --opt com.docker.network.bridge.name=docker_gwbridge \
    --opt com.docker.network.bridge.enable_icc=false \
    --opt com.docker.network.bridge.enable_ip_masquerade=true docker_gwbridge >/dev/null
}

form_swarm() {
  if ! docker network inspect docker_gwbridge >/dev/null 2>&1; then
    make_gwbridge "$manager_gwbridge" docker
    made_gwbridge=yes
  fi
  make_gwbridge "$node2_gwbridge" "${node2[@]}"
  docker swarm init --advertise-addr "$manager_ip" --listen-addr "$manager_ip:2377" \
    --default-addr-pool "$overlay_pool" --default-addr-pool-mask-length 24 >/dev/null
  "${node2[@]}" swarm join --token "$(docker swarm join-token -q worker)" \
    --advertise-addr "$node2_ip" --listen-addr "$node2_ip:2377" "$manager_ip:2377" >/dev/null
  manager_id=$(docker info --format '{{.Swarm.NodeID}}')
  node2_id=$("${node2[@]}" info --format '{{.Swarm.NodeID}}')
}

# Replicas of the service that run (healthy, since it has a health check) on one node.
running_on() {
  docker service ps "$service" --filter desired-state=running --filter "node=$1" --format '{{.CurrentState}}' | grep -c '^Running' || true
}

running_images() {
  docker service ps "$service" --filter desired-state=running --format '{{.Image}} {{.CurrentState}}' | awk '$2 == "Running" { print $1 }' | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }'
}

update_started() {
  docker service inspect "$service" --format '{{if .UpdateStatus}}{{.UpdateStatus.StartedAt}}{{end}}'
}

# Waits for the update begun after $1 (the previous update's start) to end; prints its state.
wait_update() {
  local previous=$1 deadline=$((SECONDS + $2)) status
  while [ $SECONDS -lt $deadline ]; do
    status=$(docker service inspect "$service" --format '{{if .UpdateStatus}}{{.UpdateStatus.StartedAt}} {{.UpdateStatus.State}}{{end}}')
    if [ -n "$status" ] && [ "${status% *}" != "$previous" ]; then
      case "${status##* }" in
        completed | paused | rollback_completed | rollback_paused) echo "${status##* }"; return ;;
      esac
    fi
    sleep 1
  done
  echo "timed out"
}

# Requests the load generator started in [$1, $2), and how many of them failed.
count() {
  awk -v a="$1" -v b="$2" '$1 >= a && $1 < b { n++; if ($3 != "ok") e++ } END { print n + 0, e + 0 }' "$state/requests.log"
}

trap remove_everything EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started_at=$SECONDS
install_tools
# The leftovers of a run killed outright (kill -9), found by their fixed names; in a subshell, so
# that its `set +e` stays there.
(remove_everything) >/dev/null 2>&1
start_host_engine
if ss -ltn | awk '{ print $4 }' | grep -q ":$port\$"; then
  fail "port $port is taken; set DIGITSERVE_PROXY_PORT to a free one"
fi
mkdir -p "$state/empty"

mark=$SECONDS
build_service_image
log "images built in $((SECONDS - mark)) s"

mark=$SECONDS
start_node2
# No registry: the second engine gets the image through a pipe, while the rest is prepared.
docker save digitserve:cpu | "${node2[@]}" load -q >/dev/null &
copy_pid=$!
quietly proxy-build docker build -f deploy/swarm/proxy.Dockerfile --build-arg BASE_IMAGE="$base_image" -t "$proxy_image" deploy/swarm
docker tag digitserve:cpu "$v1"
docker tag digitserve:cpu "$v2"
# The stack's health check probes port 8000; this release listens on 8001 and so never becomes
# healthy, like a release shipped with a wrong setting.
printf 'FROM %s\nENV DIGITSERVE_PORT=8001\n' "$v2" > "$state/broken.Dockerfile"
quietly broken-build docker build -t "$broken" -f "$state/broken.Dockerfile" "$state/empty"
form_swarm
wait "$copy_pid" || fail "copying the image to the second engine failed"
copy_pid=""
"${node2[@]}" tag digitserve:cpu "$v1"
"${node2[@]}" tag digitserve:cpu "$v2"
log "two-node swarm formed and the image copied in $((SECONDS - mark)) s"

mark=$SECONDS
deployed=yes
quietly deploy env DIGITSERVE_IMAGE="$v1" DIGITSERVE_PROXY_IMAGE="$proxy_image" DIGITSERVE_PROXY_PORT="$port" \
  docker stack deploy --resolve-image never -c deploy/swarm/stack.yml -c deploy/swarm/stack.no-ipvs.yml "$stack"
deadline=$((SECONDS + 240))
until [ $(($(running_on "$manager_id") + $(running_on "$node2_id"))) -eq 3 ] \
  && curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || fail "the stack did not become ready: $(docker service ps "$service" --format '{{.Node}} {{.CurrentState}} {{.Error}}' | head -6 | tr '\n' ';')"
  sleep 1
done
on_manager=$(running_on "$manager_id") on_node2=$(running_on "$node2_id")
log "stack ready in $((SECONDS - mark)) s; placement: manager $on_manager, node2 $on_node2"
[ "$on_manager" -ge 1 ] && [ "$on_node2" -ge 1 ] || fail "the replicas are not spread over both nodes"

# A Python client rather than wrk: it keeps the rate bounded and stamps every request, so the
# failures of each stage below can be counted; wrk only totals a run.
python3 deploy/swarm/load.py --port "$port" --image tests/data/digit.png --digit 7 --rate "$rate" --log "$state/requests.log" &
load_pid=$!
sleep 5
# The overlay must carry requests to the other node: otherwise nginx would quietly retry on the
# manager's replicas alone and the node failure below would prove nothing.
served_on_node2=0
for container in $("${node2[@]}" ps -q --filter "label=com.docker.swarm.service.name=$service"); do
  served_on_node2=$((served_on_node2 + $("${node2[@]}" logs "$container" 2>&1 | grep -c '"POST /predict" 200' || true)))
done
log "node2's replicas answered $served_on_node2 of the first $(wc -l < "$state/requests.log") requests"
[ "$served_on_node2" -gt 0 ] || fail "no request reached the replicas on node2"

# 1. A rolling update to a new tag.
update_from=$(now) previous=$(update_started)
docker service update --detach --quiet --no-resolve-image --image "$v2" "$service" >/dev/null
update_state=$(wait_update "$previous" 300)
update_to=$(now)
read -r update_requests update_errors < <(count "$update_from" "$update_to")
update_running=$(running_images)
update_s=$(seconds "$update_from" "$update_to")
log "update to $v2: $update_state in $update_s s, $update_requests requests, $update_errors failed; running $update_running"
update_ok=no
[ "$update_state" = completed ] && [ "$update_errors" -eq 0 ] && [ "$update_requests" -gt 0 ] \
  && [ "$update_running" = "$v2 x3" ] && update_ok=yes

# 2. The second node's engine stops.
failover_from=$(now)
kill "$node2_dockerd_pid"
deadline=$((SECONDS + 240))
until [ "$(running_on "$manager_id")" -eq 3 ] || [ $SECONDS -ge $deadline ]; do sleep 0.5; done
failover_to=$(now)
stop_node2
rescheduled=$(running_on "$manager_id")
sleep 15
after_to=$(now)
read -r failover_requests failover_errors < <(count "$failover_from" "$failover_to")
read -r after_requests after_errors < <(count "$failover_to" "$after_to")
reschedule_s=$(seconds "$failover_from" "$failover_to")
log "node2 stopped: $rescheduled replicas running on the manager after $reschedule_s s; meanwhile $failover_requests requests, $failover_errors failed; in the 15 s after, $after_requests requests, $after_errors failed"
failover_ok=no
[ "$rescheduled" -eq 3 ] && [ "$failover_errors" -eq 0 ] && [ "$after_errors" -eq 0 ] && [ "$after_requests" -gt 0 ] && failover_ok=yes

# 3. An update that never becomes healthy.
broken_from=$(now) previous=$(update_started)
docker service update --detach --quiet --no-resolve-image --image "$broken" "$service" >/dev/null
broken_state=$(wait_update "$previous" 300)
broken_to=$(now)
read -r broken_requests broken_errors < <(count "$broken_from" "$broken_to")
broken_spec=$(docker service inspect "$service" --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}')
broken_running=$(running_images)
rollback_s=$(seconds "$broken_from" "$broken_to")
log "update to $broken: $broken_state in $rollback_s s, service image $broken_spec, running $broken_running; $broken_requests requests, $broken_errors failed"
rollback_ok=no
[ "$broken_state" = rollback_completed ] && [ "$broken_spec" = "$v2" ] && [ "$broken_running" = "$v2 x3" ] && rollback_ok=yes

kill "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
load_pid=""
mark=$SECONDS
remove_everything
trap - EXIT

verdict=FAILED
[ "$update_ok$failover_ok$rollback_ok" = yesyesyes ] && verdict=passed
echo "swarm check $verdict: rolling update ($update_s s) $update_errors errors of $update_requests requests;" \
  "node2 down: 3 replicas back on the manager in $reschedule_s s, $failover_errors errors of $failover_requests during," \
  "$after_errors of $after_requests after; broken update: $broken_state in $rollback_s s, running $broken_spec," \
  "$broken_errors errors of $broken_requests; $((SECONDS - started_at)) s in all, $((SECONDS - mark)) s of it cleaning up"
[ "$verdict" = passed ]
