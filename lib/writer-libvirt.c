/* shadowcopy: the in-box writer libvirt:DOMAIN, a libvirt domain's guest
 * filesystems frozen through libvirt (writer-kinds.h): `virsh
 * domfsfreeze DOMAIN` in a guardian, `virsh domfsthaw DOMAIN` at thaw.
 * virsh connects where LIBVIRT_DEFAULT_URI (or its own default) says.
 */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/guardian.h"
#include "lib/writer-kinds.h"

struct virt {
  char *domain;
  bool may_be_frozen;           /* domfsfreeze did not refuse: thaw */
};

static void
virt_free (void *state)
{
  struct virt *v = state;

  if (v)
    free (v->domain);
  free (v);
}

static int
virt_parse (const char *arg, void **state, char *err, size_t len)
{
  struct virt *v;

  if (!arg[0] || arg[0] == '-') {
    snprintf (err, len, "%s", arg[0] ? "a domain name cannot start with '-'"
              : "no domain: libvirt:DOMAIN");
    return -EINVAL;
  }
  if (!(v = calloc (1, sizeof *v)) || !(v->domain = strdup (arg))) {
    free (v);
    return -ENOMEM;
  }
  *state = v;
  return 0;
}

static int
virt_check (void *state, char *why, size_t len)
{
  (void) state;
  return sc_writer_kind_program ("virsh", why, len);
}

static int
virsh (struct virt *v, const char *verb, uint64_t deadline, char *why,
       size_t len)
{
  char *argv[] = { (char *) "virsh", (char *) verb,
                   v->domain, NULL };
  char out[SC_GUARDIAN_WHY_MAX - 64];
  int status, r = sc_guardian_run (argv, deadline, &status, out, sizeof out);

  if (r == -ETIMEDOUT)
    snprintf (why, len, "virsh %s %s: timed out%s%s", verb, v->domain,
              out[0] ? ": " : "", out);
  else if (r < 0)
    snprintf (why, len, "virsh %s %s: %s", verb, v->domain,
              out[0] ? out : strerror (-r));
  else
    snprintf (why, len, "%s", out);
  return r == -ECHILD ? -EIO : r;
}

/* A domfsfreeze that virsh answered with an error (its exit status)
 * froze nothing of ours (libvirt refuses a guest already frozen, e.g. by
 * an admin): no domfsthaw, which would end that other freeze.  Only an
 * answer that is lost or late (timed out, status unknown) may have
 * frozen, and is thawed. */
static int
virt_freeze (void *state, uint64_t deadline, char *why, size_t len)
{
  struct virt *v = state;
  int r = virsh (v, "domfsfreeze", deadline, why, len);

  v->may_be_frozen = r != -EIO && r != -ENOENT;
  return r;
}

static int
virt_thaw (void *state, uint64_t deadline, char *why, size_t len)
{
  struct virt *v = state;

  if (!v->may_be_frozen)
    return 0;
  int r = virsh (v, "domfsthaw", deadline, why, len);
  if (r == 0)
    v->may_be_frozen = false;
  return r;
}

const struct sc_writer_kind_impl sc_writer_libvirt = {
  .prefix = "libvirt",
  .parse = virt_parse,
  .free = virt_free,
  .check = virt_check,
  .freeze = virt_freeze,
  .thaw = virt_thaw,
};
