#!/bin/sh
# Fail loudly when an option of the config fragment did not survive
# `make olddefconfig` (a missing dependency silently drops it).
# usage: check-config.sh FRAGMENT DOTCONFIG
set -eu
frag=$1 dotconfig=$2
bad=0
while IFS= read -r line; do
	case $line in
	CONFIG_*=*)
		opt=${line%%=*} ;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }; opt=${opt%% *} ;;
	*) continue ;;
	esac
	if [ "${line#\#}" != "$line" ]; then
		# Wanted off: absent or "is not set" both mean off.
		if grep -q "^$opt=" "$dotconfig"; then
			echo "linux: config: $opt wanted off, got: $(grep "^$opt=" "$dotconfig")" >&2
			bad=1
		fi
	elif ! grep -qxF "$line" "$dotconfig"; then
		got=$(grep -E "^($opt=|# $opt is not set)" "$dotconfig" || echo "absent")
		echo "linux: config: wanted $line, got: $got" >&2
		bad=1
	fi
done < "$frag"
if [ $bad -ne 0 ]; then
	echo "linux: config: options above did not survive olddefconfig" >&2
	exit 1
fi
echo "linux: config: all $(grep -cE '^(CONFIG_|# CONFIG_)' "$frag") options of the fragment survived"
