# bench/lib/systems.sh: the systems under test (sourced by bench/run.sh).
#
# A system id names one server set-up:
#   file              nbdkit's file plugin over the origin: no snapshot, the
#                     ceiling for an nbdkit plugin
#   qemu              QEMU image fleecing in qemu-storage-daemon: a
#                     copy-before-write node over the origin (exported
#                     read-write as "live"; the point in time is its
#                     creation, at start-up) and a snapshot-access node
#                     over it (exported read-only as "snap")
#   qcow2             an external snapshot, as a VM host takes one: a qcow2
#                     overlay (qemu-img create -f qcow2 -b ORIGIN -F raw)
#                     served read-write by qemu-storage-daemon as "live";
#                     the origin, now its read-only backing file, is the
#                     point in time ("snap")
#   sc-N-CS[-DUR][-pwrite][-wb]
#                     shadowcopy with N existing snapshots, chunk size CS,
#                     durability DUR (only when the plugin has it), and
#                     with -pwrite: io_uring off (SHADOWCOPY_NO_URING=1,
#                     the engine's pread/pwrite path); with -wb:
#                     write-back=on, the plugin's default (a first write
#                     acknowledged once queued, before its copy is
#                     durable), without: write-back=off (where the plugin
#                     has the option)
#
# start_system ID gives a fresh copy of the random-filled origin and a
# fresh server on a Unix socket in the instance directory, and sets
# SERVER_PID, LIVE_URI, SNAP_URI (empty: no snapshot) and CTL (shadowcopy's
# control socket).  Uses BENCH_TMP, BASE, SIZE_BYTES, PLUGIN, CLI,
# QEMU_AIO, QEMU_TARGET, HISTORY_IOPS and JOBS from run.sh.

SERVER_PID='' LIVE_URI='' SNAP_URI='' CTL='' INST=''

# sc_parse ID: SC_N, SC_CS, SC_DUR (empty: the plugin's default), SC_PWRITE
sc_parse () {
  local opts
  IFS=- read -r _ SC_N SC_CS opts <<<"$1"
  SC_DUR='' SC_PWRITE='' SC_WB=''
  case -$opts- in *-safe-*) SC_DUR=safe ;; *-volatile-*) SC_DUR=volatile ;; esac
  case -$opts- in *-pwrite-*) SC_PWRITE=1 ;; esac
  case -$opts- in *-wb-*) SC_WB=1 ;; esac
}

system_label () {
  case $1 in
    file) echo "nbdkit file plugin" ;;
    qemu) echo "QEMU cbw fleecing" ;;
    qcow2) echo "qcow2 overlay (qsd)" ;;
    sc-*)
      sc_parse "$1"
      echo "shadowcopy ${SC_N} snap ${SC_CS}${SC_DUR:+ $SC_DUR}${SC_PWRITE:+ pread/pwrite}${SC_WB:+ write-back}" ;;
    *) echo "$1" ;;
  esac
}

stop_system () {
  if [ -n "$SERVER_PID" ]; then stop_pid "$SERVER_PID"; fi
  SERVER_PID=
}

# settle: write back what the last job left dirty in the instance files, so
# that the kernel's writeback does not run during the next job.
settle () {
  find "$INST" -maxdepth 1 -type f -exec sync {} + 2>/dev/null || true
}

# new_instance: an empty instance directory for the next server.
new_instance () {
  stop_system
  INST="$BENCH_TMP/inst"
  rm -rf "$INST"
  mkdir -p "$INST"
  SNAP_URI='' CTL=''
}

start_system () {
  local id=$1 log sock
  new_instance
  cp "$BASE" "$INST/origin"
  sync "$INST/origin"
  log="$BENCH_TMP/logs/$id.log"
  sock="$INST/nbd.sock"
  case $id in
    file)
      nbdkit -f -U "$sock" file file="$INST/origin" >>"$log" 2>&1 &
      SERVER_PID=$!
      track "$SERVER_PID"
      wait_for_socket "$sock" "$SERVER_PID" "$log"
      LIVE_URI="nbd+unix:///?socket=$sock"
      ;;
    qemu)
      local target="$INST/target.$QEMU_TARGET"
      case $QEMU_TARGET in
        qcow2) qemu-img create -q -f qcow2 "$target" "$SIZE_BYTES" ;;
        raw) truncate -s "$SIZE_BYTES" "$target" ;;
        *) die "BENCH_QEMU_TARGET must be qcow2 or raw" ;;
      esac
      qemu-storage-daemon \
        --blockdev "file,node-name=origin-file,filename=$INST/origin,aio=$QEMU_AIO" \
        --blockdev raw,node-name=origin,file=origin-file \
        --blockdev "file,node-name=target-file,filename=$target,aio=$QEMU_AIO" \
        --blockdev "$QEMU_TARGET,node-name=target,file=target-file" \
        --blockdev copy-before-write,node-name=cbw,file=origin,target=target \
        --blockdev snapshot-access,node-name=snap,file=cbw \
        --nbd-server "addr.type=unix,addr.path=$sock" \
        --export nbd,id=live,node-name=cbw,name=live,writable=on \
        --export nbd,id=snap,node-name=snap,name=snap \
        >>"$log" 2>&1 &
      SERVER_PID=$!
      track "$SERVER_PID"
      wait_for_socket "$sock" "$SERVER_PID" "$log"
      LIVE_URI="nbd+unix:///live?socket=$sock"
      SNAP_URI="nbd+unix:///snap?socket=$sock"
      ;;
    qcow2)
      # The overlay's clusters are 64K (qemu-img's default): a first write
      # of 4K copies the rest of its cluster from the backing file.
      qemu-img create -q -f qcow2 -b "$INST/origin" -F raw "$INST/overlay.qcow2"
      qemu-storage-daemon \
        --blockdev "file,node-name=base-file,filename=$INST/origin,aio=$QEMU_AIO,read-only=on" \
        --blockdev raw,node-name=base,file=base-file,read-only=on \
        --blockdev "file,node-name=overlay-file,filename=$INST/overlay.qcow2,aio=$QEMU_AIO" \
        --blockdev qcow2,node-name=overlay,file=overlay-file,backing=base \
        --nbd-server "addr.type=unix,addr.path=$sock" \
        --export nbd,id=live,node-name=overlay,name=live,writable=on \
        --export nbd,id=snap,node-name=base,name=snap \
        >>"$log" 2>&1 &
      SERVER_PID=$!
      track "$SERVER_PID"
      wait_for_socket "$sock" "$SERVER_PID" "$log"
      LIVE_URI="nbd+unix:///live?socket=$sock"
      SNAP_URI="nbd+unix:///snap?socket=$sock"
      ;;
    sc-*)
      sc_parse "$id"
      local keys=("${SC_EXTRA_KEYS[@]+"${SC_EXTRA_KEYS[@]}"}")
      # write-back= as the id says (the plugin's default is on).
      if [ -n "$SC_WB" ]; then SC_EXTRA_KEYS+=(write-back=on)
      elif [ -n "${JUDGE_WB:-}" ]; then SC_EXTRA_KEYS+=(write-back=off)
      fi
      start_sc_server "$SC_CS" "$SC_DUR" "$log" "$SC_PWRITE"
      SC_EXTRA_KEYS=("${keys[@]+"${keys[@]}"}")
      sc_snapshots "$SC_N"
      if [ "$SC_N" -gt 0 ]; then SNAP_URI="nbd+unix:///s$SC_N?socket=$sock"; fi
      ;;
    *) die "unknown system $id" ;;
  esac
}

# start_sc_server CHUNK DURABILITY LOG [PWRITE]: shadowcopy over
# $INST/origin, with the diff area $INST/diff (made if missing; PWRITE not
# empty: io_uring off).  SC_EXTRA_KEYS (an array, usually empty): more
# plugin keys, such as index-cache=SIZE.  SC_START_TIMEOUT: seconds the
# start-up may take (a diff area with millions of copies replays them).
SC_EXTRA_KEYS=() SC_START_TIMEOUT=30
start_sc_server () {
  local sock="$INST/nbd.sock" no_uring=0
  [ -z "${4:-}" ] || no_uring=1
  env SHADOWCOPY_NO_URING=$no_uring \
    nbdkit -f -U "$sock" "$PLUGIN" disk="$INST/origin" diff="$INST/diff" \
    chunk-size="$1" ${2:+durability="$2"} ${SC_EXTRA_KEYS[@]+"${SC_EXTRA_KEYS[@]}"} \
    >>"$3" 2>&1 &
  SERVER_PID=$!
  track "$SERVER_PID"
  CTL="$INST/diff.sock"
  wait_for_socket "$sock" "$SERVER_PID" "$3" "$SC_START_TIMEOUT"
  wait_for_socket "$CTL" "$SERVER_PID" "$3" "$SC_START_TIMEOUT"
  LIVE_URI="nbd+unix:///live?socket=$sock"
}

sc () { "$CLI" -c "$CTL" "$@"; }

# start_load RATE: the background 4k random write load on the live export
# (RATE IOPS at most, 0: no limit); sets LOAD_PID, output in LOAD_OUT.
LOAD_PID='' LOAD_OUT=''
start_load () {
  LOAD_OUT="$BENCH_TMP/fio/load-$RANDOM.out"
  env BENCH_URI="$LIVE_URI" BENCH_SIZE="$SIZE_BYTES" BENCH_RUNTIME=3600 \
    BENCH_RATE_IOPS="$1" \
    fio --output-format=terse --terse-version=3 --output="$LOAD_OUT" \
    "$JOBS/load-randwrite-4k.fio" 2>"$LOAD_OUT.err" &
  LOAD_PID=$!
  track "$LOAD_PID"
}

# stop_load: end the load (fio writes its results on SIGINT).
stop_load () {
  stop_pid "$LOAD_PID" INT
  LOAD_PID=
}

# sc_snapshots N: create snapshots s1..sN.  With more than one, a light
# random write load (HISTORY_IOPS) runs while s1..s(N-1) are made, so
# that the older snapshots own copies of their own, as in real use; sN is
# made once that load has stopped, just before the measured jobs.
sc_snapshots () {
  local n=$1 i
  [ "$n" -gt 0 ] || return 0
  if [ "$n" -gt 1 ]; then
    start_load "$HISTORY_IOPS"
    sleep 0.2
    for ((i = 1; i < n; i++)); do
      sc create "s$i" >/dev/null
      sleep 0.02
    done
    stop_load
  fi
  sc create "s$n" >/dev/null
}
