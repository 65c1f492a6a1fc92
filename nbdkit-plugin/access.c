/* nbdkit-shadowcopy-plugin: who may open which export (access.h).
 *
 * Notes on the design
 *
 * TLS.  nbdkit --tls=require refuses every plaintext client by itself;
 * --tls=on offers TLS but lets plaintext clients in, and then the plugin
 * decides by export (tls-for=): the writable exports (the live volume,
 * writable clones) change the volume, so by default (tls-for=write) they
 * are neither listed nor opened without TLS, while read-only snapshots
 * may be read in plaintext; tls-for=all refuses every export to
 * plaintext; tls-for=none refuses none.  Writable means this connection
 * can write: under nbdkit -r (readonly in .open and .list_exports) the
 * live volume and the clones are not writable exports.  A plugin cannot
 * ask nbdkit whether TLS is on, so its mode is read from nbdkit's own
 * command line (/proc/self/cmdline: the plugin runs inside nbdkit):
 * without TLS every client is plaintext, so tls-for=write or all would
 * lock every client out and is refused at start; not knowing the mode,
 * the plugin wants tls-for= given rather than guess.
 *
 * allow-uid.  A Unix-socket client is let in only if its peer uid
 * (SO_PEERCRED, nbdkit_peer_uid) is listed; it is checked in
 * .preconnect, before the handshake, so a refused client sees no export
 * at all.  A TCP (or vsock) client has no uid the server can trust, so
 * allow-uid does not apply to it: TCP clients are restricted by TLS
 * (--tls=require, --tls-verify-peer, a PSK file) and the firewall.  A
 * client whose kind or uid cannot be told is refused.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "nbdkit-plugin/access.h"

enum tls_for { TLS_FOR_UNSET, TLS_FOR_NONE, TLS_FOR_WRITE, TLS_FOR_ALL };

#define ALLOW_UID_MAX 64

static enum tls_for tls_for;
static const char *tls_for_text = "none";
static enum access_tls_mode tls_mode;
static bool tls_keys_given;     /* --tls-certificates or --tls-psk */
static int64_t allow_uid[ALLOW_UID_MAX];
static size_t nallow_uid;
static char *allow_uid_text;    /* as given, for messages */

int
access_config_tls_for (const char *value)
{
  if (strcmp (value, "write") == 0)
    tls_for = TLS_FOR_WRITE;
  else if (strcmp (value, "all") == 0)
    tls_for = TLS_FOR_ALL;
  else if (strcmp (value, "none") == 0)
    tls_for = TLS_FOR_NONE;
  else {
    nbdkit_error ("tls-for=%s: must be write, all or none", value);
    return -1;
  }
  tls_for_text = tls_for == TLS_FOR_WRITE ? "write"
                 : tls_for == TLS_FOR_ALL ? "all" : "none";
  return 0;
}

int
access_config_allow_uid (const char *value)
{
  const char *p = value;

  nallow_uid = 0;
  for (;;) {
    char *end = (char *) p;
    unsigned long long u;
    errno = 0;
    u = *p >= '0' && *p <= '9' ? strtoull (p, &end, 10) : 0;
    if (p == end || !(*p >= '0' && *p <= '9') || errno ||
        u >= 0xffffffffULL || (*end != ',' && *end != '\0')) {
      nbdkit_error ("allow-uid=%s: must be numeric uids separated by "
                    "commas (e.g. allow-uid=0,1000)", value);
      return -1;
    }
    if (nallow_uid == ALLOW_UID_MAX) {
      nbdkit_error ("allow-uid=%s: at most %d uids", value, ALLOW_UID_MAX);
      return -1;
    }
    allow_uid[nallow_uid++] = (int64_t) u;
    if (*end == '\0')
      break;
    p = end + 1;
  }
  free (allow_uid_text);
  allow_uid_text = strdup (value);
  if (!allow_uid_text) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  return 0;
}

void
access_config_free (void)
{
  free (allow_uid_text);
  allow_uid_text = NULL;
}

/* nbdkit's own parsing of --tls (nbdkit 1.32, main.c and
 * nbdkit_parse_bool): require, required or force; else the booleans 1,
 * true, t, yes, y, on and 0, false, f, no, n, off, letters in any case.
 * nbdkit refuses to start on anything else, so another value means the
 * command line was not read as nbdkit reads it: UNKNOWN, and tls-for=
 * must be given rather than guessed. */
static enum access_tls_mode
tls_value (const char *v)
{
  static const char *const on[] = { "1", "true", "t", "yes", "y", "on" };
  static const char *const off[] = { "0", "false", "f", "no", "n", "off" };
  if (strcasecmp (v, "require") == 0 || strcasecmp (v, "required") == 0 ||
      strcasecmp (v, "force") == 0)
    return ACCESS_TLS_REQUIRE;
  for (size_t i = 0; i < sizeof on / sizeof on[0]; i++)
    if (strcasecmp (v, on[i]) == 0)
      return ACCESS_TLS_ON;
  for (size_t i = 0; i < sizeof off / sizeof off[0]; i++)
    if (strcasecmp (v, off[i]) == 0)
      return ACCESS_TLS_OFF;
  return ACCESS_TLS_UNKNOWN;
}

enum access_tls_mode
access_tls_mode_of (char *const *argv, int argc)
{
  enum access_tls_mode m = ACCESS_TLS_OFF;

  for (int i = 1; i < argc; i++) {
    if (strncmp (argv[i], "--tls=", 6) == 0)
      m = tls_value (argv[i] + 6);
    else if (strcmp (argv[i], "--tls") == 0 && i + 1 < argc)
      m = tls_value (argv[++i]);
  }
  return m;
}

bool
access_tls_keys_given (char *const *argv, int argc)
{
  bool given = false;
  for (int i = 1; i < argc; i++)
    if (strcmp (argv[i], "--tls-certificates") == 0 ||
        strncmp (argv[i], "--tls-certificates=", 19) == 0 ||
        strcmp (argv[i], "--tls-psk") == 0 ||
        strncmp (argv[i], "--tls-psk=", 10) == 0)
      given = true;
  return given;
}

/* nbdkit's TLS mode from /proc/self/cmdline (and whether keys were
 * named there: tls_keys_given). */
static enum access_tls_mode
tls_mode_of_process (void)
{
  static char buf[65536];
  char *argv[1024];
  int argc = 0, fd = open ("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  size_t len = 0;
  ssize_t n;

  if (fd < 0)
    return ACCESS_TLS_UNKNOWN;
  while (len < sizeof buf - 1 &&
         (n = read (fd, buf + len, sizeof buf - 1 - len)) != 0) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      close (fd);
      return ACCESS_TLS_UNKNOWN;
    }
    len += (size_t) n;
  }
  close (fd);
  if (len == sizeof buf - 1)
    return ACCESS_TLS_UNKNOWN;          /* too long to be sure */
  buf[len] = '\0';
  for (size_t off = 0; off < len; off += strlen (buf + off) + 1) {
    if (argc == (int) (sizeof argv / sizeof argv[0]))
      return ACCESS_TLS_UNKNOWN;
    argv[argc++] = buf + off;
  }
  tls_keys_given = access_tls_keys_given (argv, argc);
  return access_tls_mode_of (argv, argc);
}

int
access_config_complete (void)
{
  tls_mode = tls_mode_of_process ();
  if (tls_for == TLS_FOR_UNSET) {
    if (tls_mode == ACCESS_TLS_UNKNOWN) {
      nbdkit_error ("cannot tell from nbdkit's command line "
                    "(/proc/self/cmdline: unreadable, or a --tls value "
                    "nbdkit does not take) whether it serves TLS: give "
                    "tls-for=write, all or none");
      return -1;
    }
    tls_for = tls_mode == ACCESS_TLS_OFF ? TLS_FOR_NONE : TLS_FOR_WRITE;
    tls_for_text = tls_for == TLS_FOR_WRITE ? "write" : "none";
  }
  /* nbdkit then looks in its default certificate directory and, finding
   * nothing, disables TLS with a warning of its own and goes on: the
   * plugin cannot see that (docs/tls.md), so it says what would follow,
   * on stderr as nbdkit's own warning is (not an error: the keys may be
   * in that directory). */
  if (tls_mode == ACCESS_TLS_ON && !tls_keys_given && tls_for != TLS_FOR_NONE)
    fprintf (stderr, "nbdkit: shadowcopy: warning: --tls=on without "
             "--tls-certificates or --tls-psk: if nbdkit finds no "
             "certificates in its default directory it disables TLS (see "
             "its warning), and tls-for=%s then refuses %s to every "
             "client\n", tls_for_text,
             tls_for == TLS_FOR_ALL ? "every export"
             : "the live volume and the clones");
  else if (tls_for != TLS_FOR_NONE && tls_mode == ACCESS_TLS_OFF) {
    nbdkit_error ("tls-for=%s, but nbdkit serves no TLS (no --tls=on or "
                  "--tls=require): every client would be refused; add "
                  "--tls=on with --tls-certificates or --tls-psk, or drop "
                  "tls-for", tls_for_text);
    return -1;
  }
  nbdkit_debug ("access: tls-for=%s (nbdkit --tls %s), allow-uid=%s",
                tls_for_text,
                tls_mode == ACCESS_TLS_OFF ? "off"
                : tls_mode == ACCESS_TLS_ON ? "on"
                : tls_mode == ACCESS_TLS_REQUIRE ? "require" : "unknown",
                allow_uid_text ? allow_uid_text : "(any)");
  return 0;
}

int
access_preconnect (void)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int64_t uid;

  if (nallow_uid == 0)
    return 0;
  memset (&ss, 0, sizeof ss);
  if (nbdkit_peer_name ((struct sockaddr *) &ss, &len) == -1) {
    nbdkit_error ("allow-uid=%s: connection refused: the client's socket "
                  "cannot be told", allow_uid_text);
    return -1;
  }
  if (ss.ss_family != AF_UNIX)
    return 0;                   /* TCP, vsock: see the notes */
  uid = nbdkit_peer_uid ();
  if (uid < 0) {
    nbdkit_error ("allow-uid=%s: connection refused: the client's uid "
                  "cannot be told", allow_uid_text);
    return -1;
  }
  for (size_t i = 0; i < nallow_uid; i++)
    if (allow_uid[i] == uid)
      return 0;
  nbdkit_error ("connection refused: a client of uid %" PRIi64 " on the "
                "Unix socket, and allow-uid=%s", uid, allow_uid_text);
  return -1;
}

/* Must this export be reached over TLS? */
static bool
needs_tls (bool writable)
{
  return tls_for == TLS_FOR_ALL || (tls_for == TLS_FOR_WRITE && writable);
}

bool
access_may_list (bool writable, bool is_tls)
{
  return is_tls || !needs_tls (writable);
}

int
access_check_open (const char *name, bool writable, bool is_tls)
{
  if (is_tls || !needs_tls (writable))
    return 0;
  if (tls_for == TLS_FOR_ALL)
    nbdkit_error ("export '%s' refused: tls-for=all serves every export "
                  "only over TLS, and this client did not start TLS "
                  "(use nbds://)", name);
  else
    nbdkit_error ("export '%s' refused: it is writable (%s) and "
                  "tls-for=write serves writable exports only over TLS; "
                  "this client did not start TLS (use nbds://), or read a "
                  "snapshot", name, *name == '\0' || strcmp (name, "live") == 0
                  ? "the live volume" : "a writable clone");
  nbdkit_set_error (EACCES);
  return -1;
}

bool
access_plaintext_readonly (bool is_tls)
{
  return !is_tls && tls_for != TLS_FOR_NONE;
}
