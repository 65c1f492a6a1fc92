/* nbdkit-shadowcopy-plugin: parsing of its parameters (parameters.h). */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "engine/config-file.h"
#include "engine/listen-address.h"
#include "engine/size.h"
#include "nbdkit-plugin/listen.h"
#include "nbdkit-plugin/access.h"
#include "nbdkit-plugin/parameters.h"

struct plugin_config pcfg = {
  .nbd = {
    .retry_ms = SC_ORIGIN_NBD_RETRY_MS_DEFAULT,
    .io_timeout_ms = SC_ORIGIN_NBD_IO_TIMEOUT_MS_DEFAULT,
  },
};

static void seen_free (void);

void
plugin_config_free (void)
{
  free (pcfg.disk);
  free (pcfg.diff);
  free (pcfg.control);
  free (pcfg.listen);
  free (pcfg.listen_uri);
  seen_free ();
  access_config_free ();
}

/* chunk-size=SIZE: a power of two from 4K to 1M. */
static int
config_chunk_size (const char *value)
{
  struct sc_size sz;

  if (sc_size_parse (value, SC_SIZE_NBDKIT, &sz) < 0) {
    nbdkit_error ("chunk-size=%s: not a size (use e.g. 64K)", value);
    return -1;
  }
  if (sz.n < SC_CHUNK_SIZE_MIN || sz.n > SC_CHUNK_SIZE_MAX ||
      (sz.n & (sz.n - 1))) {
    nbdkit_error ("chunk-size=%s: must be a power of two from 4K to 1M",
                  value);
    return -1;
  }
  pcfg.chunk_size = (uint32_t) sz.n;
  return 0;
}

/* diff-max=SIZE|N%|unbounded. */
static int
config_diff_max (const char *value)
{
  size_t len = strlen (value);
  struct sc_size sz;

  if (sc_size_parse (value, SC_SIZE_NBDKIT | SC_SIZE_PERCENT |
                     SC_SIZE_UNBOUNDED, &sz) < 0) {
    if (len > 1 && value[len - 1] == '%')
      nbdkit_error ("diff-max=%s: a percentage must be 1%% to 1000%% of "
                    "the volume size", value);
    else
      nbdkit_error ("diff-max=%s: not a size, N%% or unbounded (use e.g. "
                    "10G or 20%%)", value);
    return -1;
  }
  if (sz.kind == SC_SIZE_BYTES && sz.n == 0) {
    nbdkit_error ("diff-max=%s: use diff-max=unbounded for no limit", value);
    return -1;
  }
  pcfg.space.diff_max_set = true;
  pcfg.space.diff_max = sz.kind == SC_SIZE_BYTES ? sz.n : 0;
  pcfg.space.diff_max_percent = sz.kind == SC_SIZE_OF_VOLUME
                               ? (uint32_t) sz.n : 0;
  return 0;
}

/* ---- config=FILE (issue 15) ------------------------------------------
 *
 * Each key of the file is applied as if it were on the command line; the
 * place of every key is remembered, so that one given both in the file
 * and on the command line (either order) is refused naming both. */

#define KEYS_MAX 64

static struct {
  char *key;
  char *where;                  /* "FILE:LINE" or NULL: the command line */
} seen[KEYS_MAX];
static size_t nseen;
static const char *applying;    /* while the file's keys are applied */
static bool config_given;

static void
seen_free (void)
{
  for (size_t i = 0; i < nseen; i++) {
    free (seen[i].key);
    free (seen[i].where);
  }
  nseen = 0;
}

/* -1 (said) if `key` was given in another place and one of them is a
 * configuration file. */
static int
config_key_place (const char *key)
{
  for (size_t i = 0; i < nseen; i++) {
    if (strcmp (seen[i].key, key) != 0)
      continue;
    if (!seen[i].where && !applying)
      return 0;                 /* twice on the command line: the last */
    nbdkit_error ("%s= given twice: %s and %s", key,
                  seen[i].where ? seen[i].where : "on the command line",
                  applying ? applying : "on the command line");
    return -1;
  }
  if (nseen == KEYS_MAX)
    return 0;
  seen[nseen].key = strdup (key);
  seen[nseen].where = applying ? strdup (applying) : NULL;
  if (!seen[nseen].key || (applying && !seen[nseen].where)) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  nseen++;
  return 0;
}

static int
config_file (const char *path)
{
  struct sc_config_file cf;
  char err[1024], where[1024 + 16];
  int r = 0;

  if (applying) {
    nbdkit_error ("%s: config= inside a configuration file", applying);
    return -1;
  }
  if (config_given) {
    nbdkit_error ("config= given twice");
    return -1;
  }
  config_given = true;
  if (sc_config_read (path, &cf, err, sizeof err) < 0) {
    nbdkit_error ("config=%s", err);
    return -1;
  }
  for (size_t i = 0; i < cf.n && r == 0; i++) {
    snprintf (where, sizeof where, "%s:%u", path, cf.entries[i].line);
    applying = where;
    r = plugin_config (cf.entries[i].key, cf.entries[i].value);
    applying = NULL;
    if (r < 0)
      nbdkit_error ("%s: %s=%s refused (see above)", where,
                    cf.entries[i].key, cf.entries[i].value);
  }
  sc_config_free (&cf);
  return r;
}

int
plugin_config (const char *key, const char *value)
{
  if (config_key_place (key) < 0)
    return -1;
  if (*value == '\0' && (strcmp (key, "disk") == 0 ||
                         strcmp (key, "diff") == 0 ||
                         strcmp (key, "control") == 0)) {
    nbdkit_error ("%s= must not be empty", key);
    return -1;
  }
  if (strcmp (key, "disk") == 0 && sc_origin_is_nbd_uri (value)) {
    free (pcfg.disk);           /* a URI: libnbd checks it at open */
    pcfg.disk = strdup (value);
    if (!pcfg.disk)
      nbdkit_error ("strdup: %m");
    return pcfg.disk ? 0 : -1;
  }
  if (strcmp (key, "disk") == 0) {
    struct stat st;
    if (stat (value, &st) == -1) {
      nbdkit_error ("disk=%s: %m", value);
      return -1;
    }
    free (pcfg.disk);
    pcfg.disk = nbdkit_realpath (value);
    return pcfg.disk ? 0 : -1;
  }
  if (strcmp (key, "diff") == 0) {
    free (pcfg.diff);
    pcfg.diff = nbdkit_absolute_path (value);
    return pcfg.diff ? 0 : -1;
  }
  if (strcmp (key, "control") == 0) {
    free (pcfg.control);
    pcfg.control = nbdkit_absolute_path (value);
    return pcfg.control ? 0 : -1;
  }
  if (strcmp (key, "durability") == 0) {
    if (strcmp (value, "safe") == 0)
      pcfg.volatile_durability = false;
    else if (strcmp (value, "volatile") == 0)
      pcfg.volatile_durability = true;
    else {
      nbdkit_error ("durability=%s: must be safe or volatile", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "chunk-size") == 0)
    return config_chunk_size (value);
  if (strcmp (key, "diff-max") == 0)
    return config_diff_max (value);
  if (strcmp (key, "on-full") == 0) {
    if (strcmp (value, "delete-oldest") == 0)
      pcfg.space.on_full = SC_ON_FULL_DELETE_OLDEST;
    else if (strcmp (value, "fail-writes") == 0)
      pcfg.space.on_full = SC_ON_FULL_FAIL_WRITES;
    else {
      nbdkit_error ("on-full=%s: must be delete-oldest or fail-writes",
                    value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "max-snapshots") == 0) {
    char *end;
    unsigned long n = value[0] >= '0' && value[0] <= '9'
                      ? strtoul (value, &end, 10) : 0;
    if (n < 1 || n > SC_MAX_SNAPSHOTS_MAX || *end != '\0') {
      nbdkit_error ("max-snapshots=%s: must be a number from 1 to %u",
                    value, SC_MAX_SNAPSHOTS_MAX);
      return -1;
    }
    pcfg.space.max_snapshots = (uint32_t) n;
    return 0;
  }
  if (strcmp (key, "max-checkpoints") == 0) {
    char *end;
    unsigned long n = value[0] >= '0' && value[0] <= '9'
                      ? strtoul (value, &end, 10) : 0;
    if (n < 1 || n > SC_MAX_CHECKPOINTS_MAX || *end != '\0') {
      nbdkit_error ("max-checkpoints=%s: must be a number from 1 to %u",
                    value, SC_MAX_CHECKPOINTS_MAX);
      return -1;
    }
    pcfg.space.max_checkpoints = (uint32_t) n;
    return 0;
  }
  if (strcmp (key, "discard-snapshots") == 0) {
    int b = nbdkit_parse_bool (value);
    if (b == -1) {
      nbdkit_error ("discard-snapshots=%s: must be on or off", value);
      return -1;
    }
    pcfg.discard_snapshots = b;
    return 0;
  }
  if (strcmp (key, "origin-changed") == 0) {
    if (strcmp (value, "invalidate") == 0)
      pcfg.space.origin_changed_accept = false;
    else if (strcmp (value, "accept") == 0)
      pcfg.space.origin_changed_accept = true;
    else {
      nbdkit_error ("origin-changed=%s: must be invalidate or accept",
                    value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "config") == 0)
    return config_file (value);
  /* The server keys: nbdkit was told them (shadowcopy serve); listen=
   * and tls= only say where the server listens. */
  if (strcmp (key, "listen") == 0) {
    struct sc_listen_address a;
    char err[256];
    if (sc_listen_parse (value, &a, err, sizeof err) < 0) {
      nbdkit_error ("%s", err);
      return -1;
    }
    free (pcfg.listen);
    pcfg.listen = strdup (value);
    return pcfg.listen ? 0 : -1;
  }
  if (strcmp (key, "tls") == 0) {
    if (strcmp (value, "off") != 0 && strcmp (value, "on") != 0 &&
        strcmp (value, "require") != 0) {
      nbdkit_error ("tls=%s: must be off, on or require", value);
      return -1;
    }
    pcfg.tls = strcmp (value, "off") != 0;
    return 0;
  }
  if (strcmp (key, "tls-certificates") == 0 || strcmp (key, "tls-psk") == 0) {
    if (*value == '\0') {
      nbdkit_error ("%s= must not be empty", key);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "retry") == 0 || strcmp (key, "io-timeout") == 0) {
    double secs;
    char *end;
    errno = 0;
    secs = value[0] >= '0' && value[0] <= '9' ? strtod (value, &end) : -1;
    if (secs < 0 || secs > 86400 || errno || *end != '\0') {
      nbdkit_error ("%s=%s: must be a number of seconds from 0 to 86400",
                    key, value);
      return -1;
    }
    uint32_t ms = (uint32_t) (secs * 1000 + 0.5);
    if (strcmp (key, "retry") == 0)
      pcfg.nbd.retry_ms = ms;
    else
      pcfg.nbd.io_timeout_ms = ms;
    return 0;
  }
  if (strcmp (key, "origin-check") == 0) {
    if (strcmp (value, "verify") == 0)
      pcfg.space.origin_check_off = false;
    else if (strcmp (value, "off") == 0)
      pcfg.space.origin_check_off = true;
    else {
      nbdkit_error ("origin-check=%s: must be verify or off", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "tls-for") == 0)
    return access_config_tls_for (value);
  if (strcmp (key, "allow-uid") == 0)
    return access_config_allow_uid (value);
  if (strcmp (key, "origin-connections") == 0) {
    char *end;
    unsigned long n = value[0] >= '0' && value[0] <= '9'
                      ? strtoul (value, &end, 10) : 0;
    if (n < 1 || n > 16 || *end != '\0') {
      nbdkit_error ("origin-connections=%s: must be a number from 1 to 16",
                    value);
      return -1;
    }
    pcfg.nbd.connections = (uint32_t) n;
    return 0;
  }
  nbdkit_error ("unknown parameter '%s' (see nbdkit-shadowcopy-plugin(1))",
                key);
  return -1;
}

/* Where the server listens, for INFO: from listen= (with tls=), else
 * from nbdkit's own command line; none when it cannot be told. */
static int
config_listen_uri (void)
{
  char uri[1024];

  if (pcfg.listen) {
    struct sc_listen_address a;
    char err[256];
    if (sc_listen_parse (pcfg.listen, &a, err, sizeof err) < 0 ||
        plugin_listen_uri (&a, pcfg.tls, uri, sizeof uri) < 0) {
      nbdkit_error ("listen=%s: cannot be made a URI", pcfg.listen);
      return -1;
    }
  }
  else if (plugin_listen_from_proc (uri, sizeof uri) != 1)
    return 0;
  pcfg.listen_uri = strdup (uri);
  return pcfg.listen_uri ? 0 : -1;
}

int
plugin_config_complete (void)
{
  seen_free ();
  if (config_listen_uri () < 0)
    return -1;
  if (!pcfg.disk || !pcfg.diff) {
    nbdkit_error ("the disk= and diff= parameters are required");
    return -1;
  }
  pcfg.space.nbd = &pcfg.nbd;
  if (!pcfg.control) {
    if (asprintf (&pcfg.control, "%s.sock", pcfg.diff) == -1) {
      nbdkit_error ("asprintf: %m");
      return -1;
    }
  }
  if (access_config_complete () < 0)
    return -1;
  return 0;
}
