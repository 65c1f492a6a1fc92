#!/bin/bash
# Tests that bit rot never makes a snapshot serve wrong data: one byte flipped at each of 240 random offsets of a diff area holding copied data (after a clean stop and after a kill -9), the real server restarted on it, every snapshot read and compared with its saved image (bitflip.py).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

SEED=${SEED:-11}
TRIALS=${BITFLIP_TRIALS:-240}
log "SEED=$SEED, $TRIALS trials"
"$PYTHON" "$tests_srcdir/bitflip.py" --plugin "$SHADOWCOPY_PLUGIN" \
    --cli "$SHADOWCOPY_CLI" --dir "$TMP/work" --trials "$TRIALS" \
    --seed "$SEED" --table "$TMP/table.md" ||
    fail "a flipped byte made a snapshot serve wrong data, or the test broke (SEED=$SEED)"
