/* nbdkit-shadowcopy-plugin: parsing of its parameters (parameters.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
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
  .write_back = true,           /* its log keeps queued writes across a
                                   kill (engine/writeback-log.c) */
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

/* index-cache=SIZE: the diff area's page cache of its copy map and
 * checksums (not stored: a server's memory). */
static int
config_index_cache (const char *value)
{
  int64_t n = nbdkit_parse_size (value);

  if (n == -1) {
    nbdkit_error ("index-cache=%s: not a size (use e.g. 64M; at least %"
                  PRIu64 "K)", value, SC_DIFF_CACHE_MIN / 1024);
    return -1;
  }
  if ((uint64_t) n < SC_DIFF_CACHE_MIN || (uint64_t) n > SC_DIFF_CACHE_MAX) {
    nbdkit_error ("index-cache=%s: must be from %" PRIu64 "K (the minimum) "
                  "to %" PRIu64 "G", value, SC_DIFF_CACHE_MIN / 1024,
                  SC_DIFF_CACHE_MAX >> 30);
    return -1;
  }
  pcfg.space.index_cache = (uint64_t) n;
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

#define NOT_MINE 1               /* a key some other group parses */

/* KEY=N with N from min to max. */
static int
parse_count (const char *key, const char *value, unsigned long min,
             unsigned long max, uint32_t *out)
{
  char *end;
  unsigned long n = value[0] >= '0' && value[0] <= '9'
                    ? strtoul (value, &end, 10) : 0;
  if (n < min || n > max || *end != '\0') {
    nbdkit_error ("%s=%s: must be a number from %lu to %lu", key, value,
                  min, max);
    return -1;
  }
  *out = (uint32_t) n;
  return 0;
}

/* KEY=no|yes, spelt `no` and `yes`: *out is whether it was `yes`. */
static int
parse_choice (const char *key, const char *value, const char *no,
              const char *yes, bool *out)
{
  if (strcmp (value, no) != 0 && strcmp (value, yes) != 0) {
    nbdkit_error ("%s=%s: must be %s or %s", key, value, no, yes);
    return -1;
  }
  *out = strcmp (value, yes) == 0;
  return 0;
}

/* disk=, diff=, control=. */
static int
config_paths (const char *key, const char *value)
{
  char **slot;
  if (strcmp (key, "disk") == 0)
    slot = &pcfg.disk;
  else if (strcmp (key, "diff") == 0)
    slot = &pcfg.diff;
  else if (strcmp (key, "control") == 0)
    slot = &pcfg.control;
  else
    return NOT_MINE;
  if (*value == '\0') {
    nbdkit_error ("%s= must not be empty", key);
    return -1;
  }
  free (*slot);
  if (slot == &pcfg.disk && sc_origin_is_nbd_uri (value)) {
    *slot = strdup (value);     /* a URI: libnbd checks it at open */
    if (!*slot)
      nbdkit_error ("strdup: %m");
    return *slot ? 0 : -1;
  }
  if (slot == &pcfg.disk) {
    struct stat st;
    *slot = NULL;
    if (stat (value, &st) == -1) {
      nbdkit_error ("disk=%s: %m", value);
      return -1;
    }
    *slot = nbdkit_realpath (value);
  }
  else
    *slot = nbdkit_absolute_path (value);
  return *slot ? 0 : -1;
}

/* How the diff area keeps copies, and its space policy. */
static int
config_space (const char *key, const char *value)
{
  bool b;
  if (strcmp (key, "durability") == 0)
    return parse_choice (key, value, "safe", "volatile",
                         &pcfg.volatile_durability);
  if (strcmp (key, "write-back") == 0)
    return parse_choice (key, value, "off", "on", &pcfg.write_back);
  if (strcmp (key, "chunk-size") == 0)
    return config_chunk_size (value);
  if (strcmp (key, "diff-max") == 0)
    return config_diff_max (value);
  if (strcmp (key, "index-cache") == 0)
    return config_index_cache (value);
  if (strcmp (key, "on-full") == 0) {
    if (parse_choice (key, value, "delete-oldest", "fail-writes", &b) < 0)
      return -1;
    pcfg.space.on_full = b ? SC_ON_FULL_FAIL_WRITES
                           : SC_ON_FULL_DELETE_OLDEST;
    return 0;
  }
  if (strcmp (key, "max-snapshots") == 0)
    return parse_count (key, value, 1, SC_MAX_SNAPSHOTS_MAX,
                        &pcfg.space.max_snapshots);
  if (strcmp (key, "max-checkpoints") == 0)
    return parse_count (key, value, 1, SC_MAX_CHECKPOINTS_MAX,
                        &pcfg.space.max_checkpoints);
  if (strcmp (key, "discard-snapshots") == 0) {
    int v = nbdkit_parse_bool (value);
    if (v == -1) {
      nbdkit_error ("discard-snapshots=%s: must be on or off", value);
      return -1;
    }
    pcfg.discard_snapshots = v;
    return 0;
  }
  if (strcmp (key, "origin-changed") == 0)
    return parse_choice (key, value, "invalidate", "accept",
                         &pcfg.space.origin_changed_accept);
  return NOT_MINE;
}

/* The server keys of a volume's file: nbdkit was told them (shadowcopy
 * serve); listen= and tls= only say where the server listens. */
static int
config_server (const char *key, const char *value)
{
  if (strcmp (key, "config") == 0)
    return config_file (value);
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
  if (strcmp (key, "tls-for") == 0)
    return access_config_tls_for (value);
  if (strcmp (key, "allow-uid") == 0)
    return access_config_allow_uid (value);
  return NOT_MINE;
}

/* An origin on an NBD server, and the origin's check at start. */
static int
config_origin (const char *key, const char *value)
{
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
  if (strcmp (key, "origin-check") == 0)
    return parse_choice (key, value, "verify", "off",
                         &pcfg.space.origin_check_off);
  if (strcmp (key, "origin-connections") == 0)
    return parse_count (key, value, 1, 16, &pcfg.nbd.connections);
  return NOT_MINE;
}

int
plugin_config (const char *key, const char *value)
{
  static int (*const groups[]) (const char *, const char *) = {
    config_paths, config_space, config_server, config_origin,
  };
  if (config_key_place (key) < 0)
    return -1;
  for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
    int r = groups[i] (key, value);
    if (r != NOT_MINE)
      return r;
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
