#!/usr/bin/env bash
# Builds the operator image with buildah, without a registry or a container daemon: the layout
# of the Containerfile (the `mmf` binary built with --no-default-features, run as UID 65532, no
# shell), from the locally built binary plus exactly the shared libraries `ldd` says it needs.
# The image goes to buildah's local storage as localhost/mmf-operator:TAG; the last line
# printed (stdout) is its image ID, everything else goes to stderr.
#
#   scripts/build-image.sh [TAG]    # TAG defaults to `dev`
#
# Environment: MMF_CARGO_PROFILE (default release) is the cargo profile of the binary it builds;
# MMF_BINARY uses that binary instead of building one; BUILDAH_STORAGE_DRIVER
# (default vfs) and BUILDAH_ISOLATION (default chroot) suit a machine without overlayfs or
# user namespaces, as root.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-dev}
image="localhost/mmf-operator:$tag"
driver=${BUILDAH_STORAGE_DRIVER:-vfs}
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
bah() { buildah --storage-driver "$driver" "$@"; }

command -v buildah >/dev/null || { echo "build-image.sh: buildah is missing (apt-get install -y buildah)" >&2; exit 1; }
command -v ldd >/dev/null || { echo "build-image.sh: ldd is missing (it comes with libc-bin)" >&2; exit 1; }

if [ -n "${MMF_BINARY:-}" ]; then
  binary=$MMF_BINARY
else
  profile=${MMF_CARGO_PROFILE:-release}
  cargo build --quiet --locked --profile "$profile" --no-default-features --bin mmf >&2
  profile_dir=$profile
  [ "$profile" != dev ] || profile_dir=debug
  binary="${CARGO_TARGET_DIR:-target}/$profile_dir/mmf"
fi
[ -x "$binary" ] || { echo "build-image.sh: $binary is not an executable" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)

rootfs=$(mktemp -d -t mmf-image.XXXXXX)
container=""
cleanup() {
  [ -z "$container" ] || bah rm "$container" >/dev/null 2>&1 || true
  rm -rf "$rootfs"
}
trap cleanup EXIT

# The binary, and every shared object ldd resolves (the dynamic loader included), at the path
# the binary looks for it; symlinks are resolved so the image holds the real files.
install -D -m 0755 "$binary" "$rootfs/usr/local/bin/mmf"
libs=$(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
[ -n "$libs" ] || { echo "build-image.sh: ldd found no libraries in $binary (a static binary needs none: drop this check)" >&2; exit 1; }
for lib in $libs; do
  install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
done
# What distroless adds besides libraries: the nonroot user, a writable /tmp, CA certificates.
mkdir -p "$rootfs/etc" "$rootfs/tmp" "$rootfs/home/nonroot"
chmod 1777 "$rootfs/tmp"
chown 65532:65532 "$rootfs/home/nonroot"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
fi

container=$(bah from --quiet scratch)
bah copy --quiet "$container" "$rootfs/" / >/dev/null
bah config \
  --user 65532:65532 \
  --workingdir /home/nonroot \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --entrypoint '["/usr/local/bin/mmf"]' \
  --cmd run \
  --label org.opencontainers.image.title=mmf-operator \
  --label org.opencontainers.image.source=https://github.com/marty-framework/mmf-operator \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$revision" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  "$container"
iidfile="$rootfs/iid"
bah commit --quiet --rm --iidfile "$iidfile" "$container" "$image" >/dev/null
container=""
echo "built $image ($(wc -l <<<"$libs") shared libraries) from $binary" >&2
cat "$iidfile"
echo
