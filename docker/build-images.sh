#!/usr/bin/env bash
# Build every image of compose.yaml, and the Debian server's
# (docker/debian-server), in two parts that run side by side:
#
#   rest      every service outside the freethreaded profile: Debian's
#             python3, servers and venvs (a few minutes cold); then the
#             Debian server's image (about 30 s cold: Debian's packages), which
#             `make debian-server` then finds in the cache
#   cpython   the freethreaded profile: the images on CPython built from
#             source, free-threaded and the GIL control (about 10 minutes
#             cold, most of it two compiles: docker/build-python.sh)
#
#   docker/build-images.sh                 build both, wait, exit non-zero if one failed
#   docker/build-images.sh --background    start both and print the folder that
#                                          tells how they end, then return at once
#   docker/build-images.sh --into DIR      build both, their logs and statuses in DIR
#
# The folder holds, per part, PART.log (compose's output) and, once the part
# has ended, PART.rc (its exit status); pid is the background job's. The test
# suite starts the build this way as early as it can and waits for the part a
# test needs (tests/integration/compose.py build_images), so the long part
# overlaps the tests that need no CPython image instead of preceding them.
# `make test` starts it right after the engine is up, before the venv.
#
# IMAGE_TAG tags the images (default latest), as compose.yaml does; a
# developer's .env is ignored (--env-file /dev/null), as in the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# compose refuses a missing secret file; an empty one is ignored by the build
if [ ! -f "${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}" ]; then
	export CA_BUNDLE=/dev/null
fi

compose() {
	docker compose --project-directory . --file compose.yaml --env-file /dev/null "$@"
}

# the services of the parts: every service has a profile (compose.yaml)
cpython_services=$(compose --profile freethreaded config --services | sort)
rest_services=$(compose --profile '*' config --services | sort | comm -23 - <(echo "$cpython_services"))

build_part() { # PART COMMAND...: one part, its log and exit status in $state
	local part=$1
	shift
	local rc=0
	"$@" >"$state/$part.log" 2>&1 || rc=$?
	echo "$rc" >"$state/$part.rc.tmp"
	mv "$state/$part.rc.tmp" "$state/$part.rc"
	return "$rc"
}

# shellcheck disable=SC2317 # called by build_part
build_rest() {
	# (set -e does not hold in a function called with ||: hence the &&.) The
	# debian server's build is the same command as docker/debian-server/start.sh's,
	# so that `make debian-server` finds its layers in the cache.
	# shellcheck disable=SC2086 # word splitting of the service list is the point
	compose --profile '*' build $rest_services &&
		docker build --quiet --tag "wsgistack-debian-server:${IMAGE_TAG:-latest}" \
			-f docker/debian-server/Dockerfile docker/debian-server
}

build_both() {
	# shellcheck disable=SC2086
	build_part cpython compose --profile '*' build $cpython_services &
	local cpython=$!
	local rc=0
	build_part rest build_rest || rc=$?
	wait "$cpython" || rc=$?
	return "$rc"
}

case "${1:-}" in
--background)
	state=$(mktemp -d "${TMPDIR:-/tmp}/wsgistack-images.XXXXXX")
	# a session of its own, so that the whole build can be stopped at once
	# (kill -- -PID); the pid is setsid's, which becomes the build itself
	setsid "$0" --into "$state" </dev/null >/dev/null 2>&1 &
	echo $! >"$state/pid"
	echo "$state"
	exit 0
	;;
--into)
	state=$2
	build_both
	exit
	;;
esac

state=$(mktemp -d "${TMPDIR:-/tmp}/wsgistack-images.XXXXXX")
echo "build-images: building every image (logs in $state)" >&2
rc=0
build_both || rc=$?
for part in rest cpython; do
	echo "build-images: $part: exit $(cat "$state/$part.rc")" >&2
	if [ "$(cat "$state/$part.rc")" != 0 ]; then
		tail -n 40 "$state/$part.log" >&2
	fi
done
exit "$rc"
