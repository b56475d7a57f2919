#!/usr/bin/env bash
# Build a local stand-in for the official `debian:trixie-slim` image.
#
#   sudo docker/build-base-image.sh [--force] [--mirror URL]
#
# The Dockerfile starts FROM debian:trixie-slim. Machines that reach Docker Hub
# pull the official image and never need this script. Machines that reach only
# a Debian package mirror (this project's build and CI machines) build an image
# of the same name here: `debootstrap --variant=minbase trixie` from the mirror
# in the host's apt sources, trimmed like the official slim variant (no docs,
# man pages or locales), then `docker import`ed. Builds use the local image
# without a pull.
#
# Skips the work when an image of that name exists, unless --force.
# Needs root and the apt package `debootstrap` (installed when missing).
set -euo pipefail

IMAGE="${BASE_IMAGE:-debian:trixie-slim}"
SUITE="${BASE_SUITE:-trixie}"
MIRROR="${DEBIAN_MIRROR:-}"
force=0

say() { printf 'build-base-image: %s\n' "$*"; }
die() { printf 'build-base-image: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --force) force=1 ;;
        --mirror) MIRROR="${2:?--mirror needs a URL}"; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (try --help)" ;;
    esac
    shift
done

# the first http(s) archive URL in the host's apt sources: "main" for the
# archive itself, "security" for the one whose suites end in -security
host_mirror() {
    local want="$1" file uri
    for file in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$file" ] || continue
        uri="$(awk -v want="$want" -v deb822="$([[ $file == *.sources ]] && echo 1 || echo 0)" '
            function emit(uri, suites) {
                if ((want == "security") == (suites ~ /-security/) && uri ~ /^https?:/) { print uri; found = 1; exit }
            }
            deb822 && /^[ \t]*$/ { if (uri != "") emit(uri, suites); uri = ""; suites = ""; next }
            deb822 && $1 == "URIs:" { uri = $2; next }
            deb822 && $1 == "Suites:" { $1 = ""; suites = $0; next }
            !deb822 && $1 == "deb" {
                i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                emit($i, $(i + 1))
            }
            END { if (!found && uri != "") emit(uri, suites) }
        ' "$file")"
        if [ -n "$uri" ]; then printf '%s\n' "$uri"; return 0; fi
    done
}

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap needs it)"
docker info >/dev/null 2>&1 || die "no Docker engine answers (run docker/install-engine.sh first)"

if [ "$force" -eq 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    origin="$(docker image inspect --format '{{ index .Config.Labels "org.opencontainers.image.description" }}' "$IMAGE" 2>/dev/null || true)"
    case "$origin" in
        *stand-in*) say "$IMAGE exists (the local stand-in built by this script), nothing to do (--force rebuilds it)" ;;
        *) say "$IMAGE exists (pulled or built elsewhere), nothing to do" ;;
    esac
    exit 0
fi

[ -n "$MIRROR" ] || MIRROR="$(host_mirror main)"
[ -n "$MIRROR" ] || die "no Debian mirror in the host's apt sources; pass --mirror URL"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-$(host_mirror security)}"

if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

say "NOTE: $IMAGE built here is a local STAND-IN for the official image,"
say "      for machines that cannot reach Docker Hub (debootstrap from $MIRROR)."

rootfs="$(mktemp -d /tmp/wsgistack-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT

# like the official slim variant: never unpack docs, man pages or locales
mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# as in the official slim images: no docs, man pages or translations
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF

say "debootstrap --variant=minbase $SUITE (about 30 s)"
debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 || {
    tail -n 20 "$rootfs.log" >&2
    die "debootstrap failed (log: $rootfs.log); on a non-Debian host (Ubuntu) pass --mirror with a Debian mirror"
}
rm -f "$rootfs.log"

# apt sources in the image's own deb822 format, from the same mirrors
rm -f "$rootfs/etc/apt/sources.list"
{
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$MIRROR" "$SUITE" "$SUITE"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    if [ -n "$SECURITY_MIRROR" ]; then
        printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$SECURITY_MIRROR" "$SUITE"
        printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    fi
} >"$rootfs/etc/apt/sources.list.d/debian.sources"

# as in the official images: no package lists or downloaded packages kept
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
rm -rf "${rootfs:?}"/var/cache/apt/archives/*.deb "${rootfs:?}"/var/lib/apt/lists/* \
    "${rootfs:?}"/usr/share/man/* "${rootfs:?}"/usr/share/locale/* \
    "${rootfs:?}"/var/log/*.log "${rootfs:?}"/dev/*
# docs that debootstrap's first stage unpacked before dpkg's excludes applied
find "$rootfs/usr/share/doc" -type f ! -name copyright -delete

say "docker import as $IMAGE"
tar -C "$rootfs" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change 'LABEL org.opencontainers.image.description="local stand-in for the official debian:trixie-slim (debootstrap minbase), built by docker/build-base-image.sh"' \
    --message "stand-in for the official $IMAGE: debootstrap --variant=minbase $SUITE" \
    - "$IMAGE" >/dev/null
say "done: $(docker image ls "$IMAGE" --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}')"
