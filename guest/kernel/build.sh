#!/bin/bash
# Build the guest vmlinux from linux-source-6.1 + tiny.config, cached by key.
#
# usage: build.sh CACHE_DIR OUTPUT
#
# The cache entry is CACHE_DIR/kernel-KEY/vmlinux, KEY being a hash of the
# source package version, the fragment and this script. A build runs in a
# temporary directory beside it and is renamed into place only when
# complete, so a killed build never leaves a half entry behind; a lock
# makes a second build of the same key wait for the first.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fragment=$here/tiny.config
tarball=/usr/src/linux-source-6.1.tar.xz
srcpkg=linux-source-6.1

die() {
	echo "kernel: $*" >&2
	exit 1
}

cache_key() {
	local version
	version=$(dpkg-query -W -f='${Version}' "$srcpkg") ||
		die "$srcpkg is not installed"
	{
		echo "$srcpkg $version"
		cat "$fragment" "$here/build.sh"
	} | sha256sum | cut -c1-16
}

# Every option of the fragment must be in the final .config as written;
# a "not set" option may also be absent (its dependencies are off).
check_config() {
	local config=$1 line name bad=0

	while read -r line; do
		case $line in
		CONFIG_*=*)
			grep -qxF -- "$line" "$config" || {
				echo "kernel: dropped by kconfig: $line" >&2
				bad=1
			}
			;;
		"# CONFIG_"*" is not set")
			name=${line#\# }
			name=${name%% *}
			! grep -q "^$name=" "$config" || {
				echo "kernel: still set: $name" >&2
				bad=1
			}
			;;
		esac
	done <"$fragment"
	return $bad
}

configure_tree() {
	local src=$1

	make -C "$src" -s ARCH=x86_64 tinyconfig >/dev/null
	(cd "$src" && ARCH=x86_64 scripts/kconfig/merge_config.sh -m \
		.config "$fragment" >/dev/null)
	make -C "$src" -s ARCH=x86_64 olddefconfig
	check_config "$src/.config" || die "fragment options were dropped"
}

build_entry() {
	local entry=$1 src

	# A build killed outright left its tree behind; we hold the lock, so
	# no other build of this key is using one.
	rm -rf "$entry".tmp.*

	# Global, so the trap still sees it when a nested step exits.
	tmp=$(mktemp -d "$entry.tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	trap 'exit 130' INT TERM

	echo "kernel: unpacking $tarball"
	tar -C "$tmp" -xJf "$tarball"
	src=$(echo "$tmp"/linux-source-*)

	configure_tree "$src"

	echo "kernel: building vmlinux (a few minutes)"
	make -C "$src" ARCH=x86_64 -j"$(nproc)" vmlinux

	mkdir "$tmp/entry"
	cp "$src/vmlinux" "$src/.config" "$tmp/entry/"
	mv -T "$tmp/entry" "$entry"
	rm -rf "$tmp"
	trap - EXIT INT TERM
}

main() {
	[ $# -eq 2 ] || die "usage: build.sh CACHE_DIR OUTPUT"
	local cache=$1 out=$2 key entry

	key=$(cache_key)
	entry=$cache/kernel-$key
	mkdir -p "$cache" "$(dirname "$out")"

	exec 9>"$entry.lock"
	flock 9
	if [ ! -f "$entry/vmlinux" ]; then
		build_entry "$entry"
	fi
	flock -u 9

	cp "$entry/vmlinux" "$out.tmp"
	mv -f "$out.tmp" "$out"
	echo "kernel: $out from $entry"
}

main "$@"
