#!/usr/bin/env bash
# Debian's uWSGI + python3 plugin against the pyuwsgi wheel (uWSGI with Python
# built in, running inside the venv's python), natively: the same rendered
# deploy/uwsgi/uwsgi.ini (minus `plugins = python3` for pyuwsgi), the same
# venv, PROCESSES x THREADS, on their own HTTP sockets, in interleaved rounds
# of wrk. Prints CSV: requests/s, and CPU ms per request of the server's
# process tree (master and workers, from /proc).
#
#   docs/measurements/compare-uwsgi-builds.sh [ROUNDS] [SECONDS]
#
# Needs Debian's uwsgi-core, uwsgi-plugin-python3 and wrk, and a venv made with
# /usr/bin/python3 holding requirements.txt and a pyuwsgi of the same version
# as Debian's uWSGI (CMP_VENV, default /tmp/uwsgi-cmp):
#   /usr/bin/python3 -m venv /tmp/uwsgi-cmp
#   /tmp/uwsgi-cmp/bin/pip install -r requirements.txt pyuwsgi==2.0.21
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
secs=${2:-8}
venv=${CMP_VENV:-/tmp/uwsgi-cmp}
processes=${PROCESSES:-1}
threads=${THREADS:-1}
declare -A PORT=([debian]=38301 [pyuwsgi]=38302) MASTER=()
# the app importable from the venv, as `pip install -e .` makes it
echo "$PWD" >"$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/wsgistack-cmp.pth"

for build in debian pyuwsgi; do
	dir=$(mktemp -d "/tmp/uwsgi-cmp-$build.XXXX")
	WSGI_PROCESSES=$processes WSGI_THREADS=$threads VENV=$venv RUN_DIR=$dir MAX_REQUESTS=0 \
		.venv/bin/python -m wsgistack.render deploy/uwsgi/uwsgi.ini --out "$dir" >/dev/null
	bin=/usr/bin/uwsgi
	if [ "$build" = pyuwsgi ]; then
		sed -i '/^plugins = python3$/d' "$dir/uwsgi.ini"
		bin=$venv/bin/uwsgi
	fi
	"$bin" --ini "$dir/uwsgi.ini" --http-socket "127.0.0.1:${PORT[$build]}" >"$dir/log" 2>&1 &
	MASTER[$build]=$!
done
trap 'kill -TERM "${MASTER[@]}" 2>/dev/null; wait' EXIT
sleep 3

# CPU ticks (utime + stime) of a master and its workers
ticks() {
	local total=0 pid
	for pid in "$1" $(pgrep -P "$1"); do
		total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
	done
	echo "$total"
}
hz=$(getconf CLK_TCK)

echo "round,build,path,requests_per_s,cpu_ms_per_request"
for round in $(seq "$rounds"); do
	for path in /up '/fib/sequence?n=1000'; do
		for build in debian pyuwsgi; do
			url="http://127.0.0.1:${PORT[$build]}$path"
			wrk -t1 -c4 -d1s "$url" >/dev/null # warm-up
			before=$(ticks "${MASTER[$build]}")
			out=$(wrk -t1 -c4 -d"${secs}s" "$url")
			used=$(($(ticks "${MASTER[$build]}") - before))
			n=$(awk '/requests in/ {print $1}' <<<"$out")
			rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
			cpu=$(awk -v u="$used" -v n="$n" -v hz="$hz" 'BEGIN {printf "%.3f", u * 1000 / hz / n}')
			echo "$round,$build,$path,$rps,$cpu"
		done
	done
done
