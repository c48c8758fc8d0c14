#!/usr/bin/env bash
# Make sure the tools xsched-ops needs on this host are installed and a Docker engine answers.
# Used by `make setup` (and so by `make test`, `make demo` and .ci/run). Debian/Ubuntu, as root
# (or with sudo). Safe to run again: it only does what is missing.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v c++filt >/dev/null 2>&1 || missing+=(binutils)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
for extra in "$@"; do
  case "$extra" in
    chromium) command -v chromium >/dev/null 2>&1 || missing+=(chromium) ;;
    # tests/test_docker_host_ssh.py: an sshd of the test's own on a loopback port
    openssh-server) [ -x /usr/sbin/sshd ] || missing+=(openssh-server) ;;
    *) missing+=("$extra") ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-engine: installing ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

engine_answers() { docker info >/dev/null 2>&1 || docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if engine_answers; then
  exit 0
fi
if [ -n "${DOCKER_HOST:-}" ]; then
  echo "ensure-engine: DOCKER_HOST=$DOCKER_HOST does not answer; start that engine or unset DOCKER_HOST" >&2
  exit 1
fi
echo "ensure-engine: no Docker engine answers; starting dockerd (log: /var/log/xsched-ops-dockerd.log)" >&2
as_root sh -c 'setsid nohup dockerd > /var/log/xsched-ops-dockerd.log 2>&1 < /dev/null &'
for _ in $(seq 1 60); do
  if engine_answers; then
    echo "ensure-engine: dockerd answers" >&2
    exit 0
  fi
  sleep 1
done
echo "ensure-engine: dockerd did not answer within 60 s; see /var/log/xsched-ops-dockerd.log" >&2
tail -20 /var/log/xsched-ops-dockerd.log >&2 || true
exit 1
