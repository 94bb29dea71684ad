#!/usr/bin/env bash
# Installs what `make run` and `make test` need and a fresh machine lacks:
# PostgreSQL's server binaries, (for the browser tests) Chromium, and (for
# the replicas test) nginx.
# Usage: scripts/ensure-deps.sh postgres [chromium] [nginx]
set -euo pipefail

have_postgres() {
  command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
have_chromium() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
have_nginx() { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing: $* — install it with: sudo apt-get install -y $*" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing: $* — this is not a Debian-like system; install $* with your package manager" >&2
    exit 1
  fi
  echo "installing $* with apt-get (one time)…" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

for need in "$@"; do
  case "$need" in
    postgres)
      have_postgres || apt_install postgresql
      # The cluster runs as the unprivileged postgres user when we are root.
      if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then apt_install postgresql; fi
      ;;
    chromium) have_chromium || apt_install chromium fonts-dejavu-core ;;
    # The replicas test balances three servers with a real nginx it starts
    # itself (its own config and port, no root paths).
    nginx) have_nginx || apt_install nginx ;;
    *) echo "ensure-deps: unknown dependency $need" >&2; exit 2 ;;
  esac
done
