#!/bin/bash
# Tests `nbdkit shadowcopy --dump-plugin`: the shadowcopy_* fields are
# there, once each, with the values of this build (the format version of
# cow/format.h, the feature and origin lists of engine/), and
# shadowcopy_io_uring follows SHADOWCOPY_NO_URING.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdkit

nbdkit "$SHADOWCOPY_PLUGIN" --dump-plugin > "$TMP/dump" 2> "$TMP/dump.err" ||
    fail "--dump-plugin failed: $(cat "$TMP/dump.err")"
field () {                      # NAME: its value; fails unless exactly once
    local n
    n=$(grep -c "^$1=" "$TMP/dump" || true)
    [ "$n" = 1 ] || fail "$1 appears $n times in --dump-plugin: $(cat "$TMP/dump")"
    sed -n "s/^$1=//p" "$TMP/dump"
}
header_define () {              # FILE NAME: the value of #define NAME
    sed -n "s/^#define $2[[:space:]]\{1,\}\([0-9]\{1,\}\).*/\1/p" \
        "$abs_top_srcdir/$1"
}

[ "$(field name)" = shadowcopy ] || fail "name is not shadowcopy"
version=$(sed -n 's/^AC_INIT(\[shadowcopy\], \[\([^]]*\)\].*/\1/p' \
    "$abs_top_srcdir/configure.ac")
[ "$(field shadowcopy_version)" = "$version" ] ||
    fail "shadowcopy_version is not configure.ac's $version"
[ "$(field shadowcopy_format_version)" = \
  "$(header_define cow/format.h SC_FORMAT_VERSION)" ] ||
    fail "shadowcopy_format_version is not cow/format.h's SC_FORMAT_VERSION"
[ "$(field shadowcopy_format_version_min)" = \
  "$(header_define cow/format.h SC_FORMAT_VERSION_MIN)" ] ||
    fail "shadowcopy_format_version_min is not cow/format.h's"

features=$(field shadowcopy_features)
[[ $features =~ ^[a-z-]+(,[a-z-]+)*$ ]] ||
    fail "shadowcopy_features is not a comma list: '$features'"
for f in snapshots checkpoints clones revert changed-blocks; do
    [[ ,$features, == *,$f,* ]] || fail "shadowcopy_features lacks $f: $features"
done
backends=$(field shadowcopy_origin_backends)
[[ ,$backends, == *,file,* ]] ||
    fail "shadowcopy_origin_backends lacks file: '$backends'"

uring=$(field shadowcopy_io_uring)
[[ $uring == yes || $uring == no ]] ||
    fail "shadowcopy_io_uring is '$uring', not yes or no"
SHADOWCOPY_NO_URING=1 nbdkit "$SHADOWCOPY_PLUGIN" --dump-plugin > "$TMP/dump"
[ "$(field shadowcopy_io_uring)" = no ] ||
    fail "shadowcopy_io_uring is not no with SHADOWCOPY_NO_URING=1"
log "ok: $(grep '^shadowcopy_' "$TMP/dump" | tr '\n' ' ')"
