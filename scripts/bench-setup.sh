#!/usr/bin/env bash
# Installs what the benchmarks compare against, when it is missing:
# redis-server, OpenSSH (server and client), unzip and Ansible.
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v scp >/dev/null || missing+=(openssh-client)
command -v unzip >/dev/null || missing+=(unzip)
command -v ansible-playbook >/dev/null || missing+=(ansible)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "bench needs: ${missing[*]} (install them with apt-get as root)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}"
