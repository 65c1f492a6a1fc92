/* shadowcopy: the in-box writers other than fsfreeze, spelled KIND:ARG
 * (qemu-ga:SOCKET[:MOUNT,...], libvirt:DOMAIN, postgresql:CONNINFO,
 * mysql:DEFAULTS-FILE), and the table of every in-box writer behind
 * shadowcopy_writers_list().
 *
 * writers.c hands a writer whose name starts with one of these prefixes
 * to sc_writer_kind_run; each kind's file (writer-qemu-ga.c,
 * writer-libvirt.c, writer-postgresql.c, writer-mysql.c) supplies its
 * argument's parser and its operations, run by a guardian (guardian.h)
 * for the kinds that hold a freeze.
 */
#ifndef SHADOWCOPY_LIB_WRITER_KINDS_H
#define SHADOWCOPY_LIB_WRITER_KINDS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/guardian.h"

struct sc_writer;

/* One kind: what writer-kinds.c needs of writer-KIND.c. */
struct sc_writer_kind_impl {
  const char *prefix;           /* "qemu-ga", without the colon */
  /* Parse the argument into a new state; -EINVAL with err on bad input. */
  int (*parse) (const char *arg, void **state, char *err, size_t len);
  void (*free) (void *state);
  /* prepare: what must be there (a program, a socket, a file). */
  int (*check) (void *state, char *why, size_t len);
  /* A freeze held by a guardian: its operations (NULL for none)... */
  int (*freeze) (void *state, uint64_t deadline, char *why, size_t len);
  int (*thaw) (void *state, uint64_t deadline, char *why, size_t len);
  /* ... or a step run once, in prepare, holding nothing (postgresql's
   * CHECKPOINT), or NULL. */
  int (*once) (void *state, uint64_t deadline, char *why, size_t len);
};

extern const struct sc_writer_kind_impl sc_writer_qemu_ga;
extern const struct sc_writer_kind_impl sc_writer_libvirt;
extern const struct sc_writer_kind_impl sc_writer_postgresql;
extern const struct sc_writer_kind_impl sc_writer_mysql;

/* The kind of writer `name` (by its prefix), or NULL. */
const struct sc_writer_kind_impl *sc_writer_kind_of (const char *name);

/* Whether `name` of a kind is well-formed: 0, or -EINVAL with err
 * ("writer NAME: ..."). */
int sc_writer_kind_check (const char *name, char *err, size_t errlen);

/* Attach the kind's state to w (w->name of a kind); 0 or -ENOMEM /
 * -EINVAL. */
int sc_writer_kind_init (struct sc_writer *w);
void sc_writer_kind_free (struct sc_writer *w);

/* Run one phase, as sc_writer_run does (writers.h). */
struct sc_writer_env;
int sc_writer_kind_run (struct sc_writer *w, const char *phase,
                        const struct sc_writer_env *env, uint64_t timeout_ms, uint64_t freeze_ms,
                        char *msg, size_t msglen);

/* Helpers for the kinds. */
/* Whether `prog` is found in PATH. */
int sc_writer_kind_program (const char *prog, char *why, size_t len);

#endif
