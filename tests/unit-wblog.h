/* Unit tests: what the tests of the write-back log share: a fixed boot
 * id, a log directory of the test's own, logs written as a killed server
 * leaves them, and the opens that find them. */
#ifndef SHADOWCOPY_TESTS_UNIT_WBLOG_H
#define SHADOWCOPY_TESTS_UNIT_WBLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/writeback-log.h"
#include "tests/unit-helpers.h"

#define VOL (1u << 20)

/* The boot id the engine sees (wbt_fixed_boot); byte 2 tells boots
 * apart. */
extern uint8_t wbt_boot_now[16];
/* Two disks' keys. */
extern uint8_t wbt_key_a[SC_WB_LOG_KEY], wbt_key_b[SC_WB_LOG_KEY];
/* A log's owner, for the parser's tests. */
extern const struct sc_wb_log_owner wbt_some_owner;

/* sc_boot_id_hook: this boot (wbt_boot_now), or an unreadable id. */
int wbt_fixed_boot (uint8_t id[16]);
int wbt_boot_id_fails (uint8_t id[16]);
/* The suite's .init and .fini: uh_setup, the fixed boot, and the logs in
 * the test's directory. */
void wbt_setup (void);
void wbt_teardown (void);

/* Queue a write of `count` bytes of `byte` at `offset` in slot i. */
void wbt_queue (struct sc_wb_log *log, unsigned i, uint64_t seq,
                uint64_t offset, uint32_t count, uint8_t byte);
/* A new log at path, for disk `key` and `owner`'s session. */
struct sc_wb_log *wbt_make_log (const char *path,
                                const uint8_t key[SC_WB_LOG_KEY],
                                const struct sc_wb_log_owner *owner);
/* The file's image, as a restarted server finds it (malloc'd). */
uint8_t *wbt_image (const char *path, size_t *len);

/* The open volume's log: its key (in key) and path (malloc'd). */
char *wbt_where (struct uh_vol *t, uint8_t key[SC_WB_LOG_KEY]);
/* The open volume's session and its diff area: what its log holds. */
struct sc_wb_log_owner wbt_owner_of (struct uh_vol *t);
/* A killed server's log (of `owner`'s session): two writes over the same
 * bytes of chunk 1, the later one in the lower slot, and one retired. */
void wbt_killed_server_log (const char *p, const uint8_t key[SC_WB_LOG_KEY],
                            const struct sc_wb_log_owner *owner);
/* A volume with snapshot s1, closed as a killed server would leave it,
 * with wbt_killed_server_log's log: its path (key in key); its session
 * in wbt_old_session. */
char *wbt_killed_volume (struct uh_vol *t, uint8_t key[SC_WB_LOG_KEY]);
/* The disk is written while no server runs, over the bytes of
 * wbt_killed_server_log's queued writes (chunk 1), its mtime moved on:
 * t->live follows. */
void wbt_disk_written_behind (struct uh_vol *t);
/* t->live once wbt_killed_server_log's queued writes are written. */
void wbt_replayed (struct uh_vol *t);
/* sc_io_fault_hook: fails (once, EIO) the superblock write that records
 * a session id other than wbt_old_session, a transient error of the
 * diff area's disk; wbt_session_failures counts them. */
extern uint64_t wbt_old_session;
extern int wbt_session_failures;
struct sc_io_req;
int wbt_fail_session_store (const struct sc_io_req *req);
/* The open of the volume fails: its error, with err filled. */
int wbt_open_fails (struct uh_vol *t, char *err, size_t errlen);
/* Open the volume with write-back on or off, origin-check=off or not. */
void wbt_open_with (struct uh_vol *t, bool write_back, bool check_off);
/* Open the volume with origin-check=off. */
void wbt_open_check_off (struct uh_vol *t);
/* A session that does not find the disk's log (another directory), with
 * origin-check=off or not: it writes chunk 1, flushes, stops cleanly. */
void wbt_unfound_session (struct uh_vol *t, bool check_off);

#endif
