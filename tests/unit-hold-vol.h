/* Shared by the creation hold's unit tests (unit-hold.c and
 * unit-hold-flush.c): a small volume, 4K chunks over an origin of SIZE
 * bytes of uh_pattern (seed 21), and hooks on its diff area's I/O. */
#ifndef SHADOWCOPY_TESTS_UNIT_HOLD_VOL_H
#define SHADOWCOPY_TESTS_UNIT_HOLD_VOL_H

#include <stdint.h>

#include "cow/io.h"
#include "engine/volume.h"

#define CS 4096
#define SIZE (64 * CS)
#define DELAY_NS 300000000u     /* each write or sync of the diff area */

/* diff_io_hook (an sc_io_fault_hook) delays each write and sync of the
 * diff area whose fd is slow_fd, and fails those of fail_fd (-1: none). */
extern int slow_fd, fail_fd;
int diff_io_hook (const struct sc_io_req *req);

/* A suite's .fini: the stopped syncs go, the hooks off, uh_teardown. */
void hold_teardown (void);

struct vol {
  char *origin, *diff;
  struct sc_volume *v;
};

struct write_arg {
  struct vol *t;
  uint64_t off;
  uint8_t byte;
  int r;
};

void vol_open (struct vol *t);
/* The origin and the diff area in the test's directory, opened. */
void vol_create (struct vol *t);
void vol_free (struct vol *t);
/* The snapshot `name` is on disk: it is there after a reopen. */
void assert_durable (struct vol *t, const char *name);
/* CS bytes at `off` of snapshot `snap` (NULL: the live volume). */
void assert_chunk (struct vol *t, const char *snap, uint64_t off,
                   const uint8_t *want);
/* pthread routine: a write of CS bytes of `byte` at `off`; r its result. */
void *write_thread (void *p);

#endif
