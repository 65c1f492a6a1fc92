/* shadowcopy: which boot of the machine this is.
 *
 * A diff area records the boot its last read-write session ran in.  When
 * the next open runs in the same boot, the previous session ended by a
 * process crash (kill -9, an abort), not by a power cut or a kernel
 * crash: the page cache kept every write that had returned, so nothing
 * can be torn, and data that does not check out is damage.
 */
#ifndef SHADOWCOPY_COW_BOOT_ID_H
#define SHADOWCOPY_COW_BOOT_ID_H

#include <stdbool.h>
#include <stdint.h>

/* This boot's id (/proc/sys/kernel/random/boot_id) as 16 bytes; 0, or a
 * negative errno (then id is all zeros). */
int sc_boot_id (uint8_t id[16]);

/* True if `id` is known (not all zeros) and is this boot's. */
bool sc_boot_id_is_now (const uint8_t id[16]);

/* For tests (the crash harness, whose simulated power cuts happen within
 * one boot): when set, called instead of reading /proc. */
extern int (*sc_boot_id_hook) (uint8_t id[16]);

#endif
