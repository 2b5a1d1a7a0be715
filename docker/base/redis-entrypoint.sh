#!/bin/sh
# redis base image (docker/base/redis.Dockerfile): `redis-server [config-file] [--option value …]`
# runs with protected mode off, as the official image does; options given later still win.
set -eu
case "${1:-}" in -*) set -- redis-server "$@" ;; esac
if [ "${1:-}" = redis-server ]; then
  shift
  case "${1:-}" in
    ''|-*) set -- redis-server --protected-mode no "$@" ;;
    *) config=$1; shift; set -- redis-server "$config" --protected-mode no "$@" ;;
  esac
fi
exec "$@"
