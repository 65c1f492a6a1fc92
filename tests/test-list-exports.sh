#!/bin/bash
# Tests that nbdinfo --list shows "live" and every snapshot with a description holding its id and creation time, and that unknown exports are refused.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdinfo

make_disk "$TMP/disk" 16M
start_server "$TMP/disk" "$TMP/diff" chunk-size=4K

sc_create alpha
nbd_write_random live 0 4096
sc_create beta-1.x
sc_create "c:2+x_y"
# The default name is the creation time (UTC).
default_name=$(sc create) || fail "shadowcopy create (default name) failed"
[ -n "$default_name" ] || fail "shadowcopy create printed no name"
case "$default_name" in
    20[0-9][0-9]-[01][0-9]-[0-3][0-9]T*) ;;
    *) fail "default snapshot name '$default_name' is not an ISO 8601 UTC time" ;;
esac
sc_create gone
sc delete gone || fail "shadowcopy delete gone failed"

check_listing () {
    sc list --json > "$TMP/list.json" || fail "shadowcopy list --json failed"
    nbdinfo --list --json "$(uri "")" > "$TMP/exports.json" ||
        fail "nbdinfo --list failed"
    "$PYTHON" - "$TMP/list.json" "$TMP/exports.json" <<'EOF' || fail "export listing is wrong"
import json, re, sys, datetime
snaps = json.load(open(sys.argv[1]))
exports = json.load(open(sys.argv[2]))["exports"]
by_name = {e["export-name"]: e for e in exports}
err = []
if len(by_name) != len(exports):
    err.append("duplicate export names: %s" % [e["export-name"] for e in exports])
if "live" not in by_name:
    err.append("no export 'live' in the list")
elif not by_name["live"].get("description"):
    err.append("export 'live' has no description")
elif by_name["live"].get("is_read_only"):
    err.append("export 'live' is listed read-only")
names = [s["name"] for s in snaps]
if "gone" in by_name or "gone" in names:
    err.append("deleted snapshot 'gone' is still listed")
extra = set(by_name) - set(names) - {"live", ""}
if extra:
    err.append("unexpected exports listed: %s" % sorted(extra))

def time_forms(created):
    """The creation time as ISO text, to second precision."""
    if isinstance(created, (int, float)):
        secs = created / 1e9 if created > 1e12 else created
        t = datetime.datetime.fromtimestamp(int(secs), datetime.timezone.utc)
        base = t.strftime("%Y-%m-%dT%H:%M:%S")
    else:
        base = str(created)[:19]
    return [base, base.replace("T", " ")]

for s in snaps:
    e = by_name.get(s["name"])
    if e is None:
        err.append("snapshot %r is not listed as an export" % s["name"])
        continue
    desc = e.get("description") or ""
    if not re.search(r"(?<![0-9])%d(?![0-9])" % int(s["id"]), desc):
        err.append("description of %r does not contain its id %s: %r"
                   % (s["name"], s["id"], desc))
    if "uuid=%s" % s.get("uuid") not in desc:
        err.append("description of %r does not contain uuid=%s: %r"
                   % (s["name"], s.get("uuid"), desc))
    if not any(f in desc for f in time_forms(s["created"])):
        err.append("description of %r does not contain its creation time %s: %r"
                   % (s["name"], s["created"], desc))
    if not e.get("is_read_only"):
        err.append("snapshot export %r is not read-only" % s["name"])
    if e.get("export-size") != 16 << 20:
        err.append("snapshot export %r has size %s" % (s["name"], e.get("export-size")))
if len(snaps) != 4:
    err.append("expected 4 snapshots, list has %d: %s" % (len(snaps), names))
for x in err:
    print("  " + x, file=sys.stderr)
if err:
    sys.exit(1)
print("listing ok: %s" % sorted(by_name))
EOF
}
check_listing

# The text listing shows the same names.
nbdinfo --list "$(uri "")" > "$TMP/exports.txt" || fail "nbdinfo --list failed"
for n in live alpha beta-1.x "c:2+x_y" "$default_name"; do
    grep -qF "export=\"$n\"" "$TMP/exports.txt" ||
        fail "nbdinfo --list does not show export $n"
done

# Unknown export names are refused, with a message in the server log
# naming the export.
if nbdinfo "$(uri nosuch)" > "$TMP/out" 2> "$TMP/err"; then
    fail "nbdinfo of unknown export 'nosuch' succeeded: $(cat "$TMP/out")"
fi
[ -s "$TMP/err" ] || fail "nbdinfo of unknown export gave no error message"
grep -q nosuch "$SERVER_LOG" ||
    fail "the server log does not say which export was refused (nosuch)"
if nbdinfo "$(uri gone)" > /dev/null 2>&1; then
    fail "nbdinfo of deleted snapshot 'gone' succeeded"
fi
if nbd_py nosuch 'print(h.pread(512, 0))' >/dev/null 2>&1; then
    fail "nbdsh could read from unknown export 'nosuch'"
fi

# The listing survives a restart unchanged.
cp "$TMP/list.json" "$TMP/list-before.json"
restart_server
check_listing
same_snapshot_lists "$TMP/list-before.json" "$TMP/list.json" id name created ||
    fail "snapshot list changed across restart"
stop_server
exit 0
