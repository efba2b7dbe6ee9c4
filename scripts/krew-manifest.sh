#!/usr/bin/env bash
# Writes the krew plugin manifest of a release to stdout: krew/mmf.yaml with the release's
# version and, for every platform, the sha256 of its archive mmf-<os>-<arch>.tar.gz in DIR.
# The release workflow runs it after building the archives; a platform without its archive is
# an error, so a published manifest never carries the template's placeholder digests.
#
#   scripts/krew-manifest.sh VERSION DIR > mmf.yaml     # VERSION without the v, e.g. 0.1.0
set -euo pipefail
version=${1:?usage: krew-manifest.sh VERSION DIR}
dir=${2:?usage: krew-manifest.sh VERSION DIR}
template="$(cd "$(dirname "$0")/.." && pwd)/krew/mmf.yaml"
[ -d "$dir" ] || { echo "krew-manifest.sh: $dir is not a directory" >&2; exit 1; }
case $version in
  v*) echo "krew-manifest.sh: VERSION is given without the v (0.1.0, not $version)" >&2; exit 1 ;;
esac

declare -A digests
for archive in "$dir"/mmf-*-*.tar.gz; do
  [ -e "$archive" ] || break
  digests[$(basename "$archive")]=$(sha256sum "$archive" | cut -d' ' -f1)
done

# Written whole at the end: a failure leaves no partial manifest behind.
out="# krew plugin manifest of mmf v$version, written by scripts/krew-manifest.sh from krew/mmf.yaml."$'\n'
current=""
while IFS= read -r line; do
  case $line in
    "#"*)
      continue ;;
    "  version: v"*)
      line="  version: v$version" ;;
    *"uri: "*)
      # The template's uri names the template's version; the release's replaces it.
      line=$(sed -E "s#/download/v[^/]+/#/download/v$version/#" <<<"$line")
      current=${line##*/}
      if [ -z "${digests[$current]:-}" ]; then
        echo "krew-manifest.sh: $dir/$current is missing (every platform of krew/mmf.yaml needs its archive)" >&2
        exit 1
      fi ;;
    *"sha256: "*)
      [ -n "$current" ] || { echo "krew-manifest.sh: a sha256 before any uri in $template" >&2; exit 1; }
      line="${line%%sha256:*}sha256: \"${digests[$current]}\""
      current="" ;;
  esac
  out+="$line"$'\n'
done < "$template"
printf '%s' "$out"
