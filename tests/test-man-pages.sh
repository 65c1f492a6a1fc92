#!/usr/bin/env bash
# Every man page of docs/ renders without a groff warning (groff -ww, and
# man's own run); every public function of lib/shadowcopy.h is documented
# in the NAME of a man3 page listed in docs/docs.am; every page a page
# refers to as NAME(3) exists (a page, or a function's link page); and
# docs/man-links.sh's link pages lead `man FUNCTION` to its page.
. "$(dirname "$0")/functions.sh"
requires groff man

src=$abs_top_srcdir
pages=$(cd "$src" && ls docs/*.[1-8])
[ -n "$pages" ] || hard_error "no man pages in $src/docs"

# groff warnings fail (-ww: all of them), and so does man's rendering.
for p in $pages; do
    groff -man -Tutf8 -ww -z "$src/$p" >"$TMP/out" 2>"$TMP/err" ||
        fail "$p: groff failed: $(cat "$TMP/err")"
    [ ! -s "$TMP/err" ] || fail "$p: groff warns: $(cat "$TMP/err")"
    MANWIDTH=80 man --warnings -l "$src/$p" >"$TMP/out" 2>"$TMP/err" ||
        fail "$p: man -l failed: $(cat "$TMP/err")"
    [ ! -s "$TMP/err" ] || fail "$p: man -l warns: $(cat "$TMP/err")"
    grep -q '^\.SH SEE ALSO' "$src/$p" || fail "$p: no SEE ALSO"
done

# Every man3 page is installed (listed in docs/docs.am).
man3=$(cd "$src" && ls docs/*.3)
for p in $man3; do
    grep -q "^	$p" "$src/docs/docs.am" ||
        fail "$p: not in docs/docs.am's LIB_MAN3 (make install would skip it)"
    for s in SYNOPSIS DESCRIPTION 'RETURN VALUE' ERRORS; do
        grep -q "^\.SH $s" "$src/$p" || fail "$p: no $s section"
    done
done

# Every function of the public header has a page (its NAME lists it).
(cd "$src" && sh docs/man-links.sh list - $man3) >"$TMP/links"
for p in $man3; do basename "$p" .3; done >"$TMP/documented"
cut -d' ' -f1 "$TMP/links" >>"$TMP/documented"
funcs=$(grep -oE '\bshadowcopy_[a-z_]+ \(' "$src/lib/shadowcopy.h" |
        sed 's/ (//' | sort -u)
[ "$(echo "$funcs" | wc -l)" -gt 40 ] ||
    hard_error "lib/shadowcopy.h: found too few functions: $funcs"
for f in $funcs; do
    grep -qx "$f" "$TMP/documented" ||
        fail "$f (lib/shadowcopy.h) is in no man page's NAME"
done

# Every NAME(3) reference resolves to a page or a link page.
refs=$(cd "$src" && cat $pages |
       grep -oE '^\.BR [a-z_]*shadowcopy[a-z_]* \(3\)' | awk '{print $2}' |
       sort -u)
for r in $refs; do
    grep -qx "$r" "$TMP/documented" || fail "$r(3) is referred to, but no page has it"
done

# The link pages, installed as make install does, lead man to the page.
mkdir -p "$TMP/man/man3"
for p in $man3; do cp "$src/$p" "$TMP/man/man3/"; done
(cd "$src" && sh docs/man-links.sh install "$TMP/man/man3" $man3)
while read -r f page; do
    MANWIDTH=80 man -M "$TMP/man" 3 "$f" >"$TMP/out" 2>"$TMP/err" ||
        fail "man $f: $(cat "$TMP/err")"
    up=$(echo "$page" | tr a-z A-Z)
    head -n 3 "$TMP/out" | grep_all "^$up(3)" ||
        fail "man $f does not show $page(3): $(head -n 3 "$TMP/out")"
done <"$TMP/links"

log "$(echo "$pages" | wc -w) pages, $(echo "$funcs" | wc -w) functions, $(wc -l <"$TMP/links") link pages: OK"
