#!/bin/sh
# docs/man-links.sh: one small page per function of libshadowcopy, so that
# `man shadowcopy_connect` finds shadowcopy_open(3).
#
#   docs/man-links.sh install|uninstall|list MAN3DIR PAGE.3...
#
# Each PAGE's NAME section lists the functions it documents; every name
# but the page's own becomes MAN3DIR/NAME.3 holding ".so man3/PAGE.3".
# `list` prints "NAME PAGE" lines (tests/test-man-pages.sh checks them).
set -e
action=$1 dir=$2
shift 2
for page in "$@"; do
  base=$(basename "$page" .3)
  # The line after .SH NAME: "a, b, c \- what they do".
  names=$(sed -n '/^\.SH NAME/{n;s/ \\-.*//;s/,/ /g;p;q;}' "$page")
  for n in $names; do
    [ "$n" = "$base" ] && continue
    case $action in
      install) printf '.so man3/%s.3\n' "$base" > "$dir/$n.3" ;;
      uninstall) rm -f "$dir/$n.3" ;;
      list) echo "$n $base" ;;
      *) echo "usage: $0 install|uninstall|list MAN3DIR PAGE.3..." >&2
         exit 2 ;;
    esac
  done
done
