/* shadowcopy: the control protocol codec (see control-protocol.h).
 *
 * Notes on the design
 *
 * Everything here reads bytes from a peer we do not trust (the server reads
 * whatever a local user sends; the CLI reads a socket path the user named),
 * so the parsers accept exactly the grammar of the header and nothing
 * else: ASCII classes are spelled out rather than taken from <ctype.h>,
 * whose answers depend on the locale, every length is bounded by
 * SC_CTL_LINE_MAX, and every rejection comes with a static reason that is
 * safe to send back.
 */
#include <config.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "engine/clock.h"
#include "engine/control-protocol.h"

static inline bool
is_upper (unsigned char c)
{
  return c >= 'A' && c <= 'Z';
}

static inline bool
is_alnum (unsigned char c)
{
  return is_upper (c) || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static inline bool
is_verb_char (unsigned char c)
{
  return is_upper (c) || c == '-';
}

static inline bool
is_arg_char (unsigned char c)
{
  return is_alnum (c) || c == '.' || c == '_' || c == ':' || c == '+' ||
    c == '-' || c == '=';
}

/* Kinds and keys of data lines: lower case, like "chunk-size". */
static inline bool
is_key_char (unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static inline bool
is_errname_char (unsigned char c)
{
  return is_upper (c) || (c >= '0' && c <= '9');
}

/* Values and messages: anything printable.  Bytes >= 0x80 pass, so a
 * UTF-8 origin path survives the trip. */
static inline bool
is_text_char (unsigned char c)
{
  return c >= 0x20 && c != 0x7f;
}

static int
fail (const char **why, const char *reason)
{
  if (why)
    *why = reason;
  return -EINVAL;
}

/* ---- parsing ------------------------------------------------------- */

int
sc_ctl_parse_request (char *line, struct sc_ctl_request *req,
                      const char **why)
{
  size_t len = strnlen (line, SC_CTL_LINE_MAX);
  char *p = line;

  memset (req, 0, sizeof *req);
  if (len >= SC_CTL_LINE_MAX)
    return fail (why, "request too long");
  if (len == 0)
    return fail (why, "empty request");
  if (!is_upper (*p))
    return fail (why, "request must start with an upper-case verb");

  req->verb = p;
  while (is_verb_char (*p))
    p++;
  while (*p) {
    const char *arg;

    if (*p != ' ')
      return fail (why, req->nargs == 0 ? "bad character in verb"
                                        : "bad character in argument");
    *p++ = '\0';
    if (req->nargs == SC_CTL_ARGS_MAX)
      return fail (why, "too many arguments");
    arg = p;
    while (is_arg_char (*p))
      p++;
    if (p == arg)
      return fail (why, *p == ' ' || *p == '\0'
                   ? "empty argument (stray space)"
                   : "bad character in argument");
    req->args[req->nargs++] = arg;
  }
  return 0;
}

static int
parse_err (char *p, struct sc_ctl_line *out, const char **why)
{
  const char *name = p;

  while (is_errname_char (*p))
    p++;
  if (p == name)
    return fail (why, "ERR without an error name");
  if (*p != '\0' && *p != ' ')
    return fail (why, "bad character in error name");
  if (*p == ' ')
    *p++ = '\0';
  out->message = p;
  for (; *p; p++)
    if (!is_text_char (*p))
      return fail (why, "control character in error message");
  out->type = SC_CTL_ERR;
  out->err = sc_ctl_errnum (name);
  return 0;
}

static int
parse_data (char *p, struct sc_ctl_line *out, const char **why)
{
  out->kind = p;
  while (is_key_char (*p))
    p++;
  if (p == out->kind)
    return fail (why, "data line without a kind");

  while (*p) {
    struct sc_ctl_field *f, extra;
    size_t i;

    if (*p != '\t')
      return fail (why, out->nfields == 0 ? "bad character in kind"
                                          : "control character in value");
    *p++ = '\0';
    /* Past the cap, a field is checked as any other and then dropped: a
     * newer minor server may add keys (docs/control-protocol.md). */
    f = out->nfields < SC_CTL_FIELDS_MAX ? &out->fields[out->nfields]
                                         : &extra;
    f->key = p;
    while (is_key_char (*p))
      p++;
    if (p == f->key)
      return fail (why, "field without a name");
    if (*p != '=')
      return fail (why, "bad character in field name");
    *p++ = '\0';
    f->value = p;
    while (*p && *p != '\t') {
      if (!is_text_char (*p))
        return fail (why, "control character in value");
      p++;
    }
    /* A repeated key would make sc_ctl_field() quietly pick one. */
    for (i = 0; i < out->nfields; i++)
      if (strcmp (out->fields[i].key, f->key) == 0)
        return fail (why, "duplicate field");
    if (f == &extra)
      out->ignored++;
    else
      out->nfields++;
  }
  out->type = SC_CTL_DATA;
  return 0;
}

int
sc_ctl_parse_reply (char *line, struct sc_ctl_line *out, const char **why)
{
  size_t len = strnlen (line, SC_CTL_LINE_MAX);

  memset (out, 0, sizeof *out);
  if (len >= SC_CTL_LINE_MAX)
    return fail (why, "reply too long");
  if (len == 0)
    return fail (why, "empty reply");
  if (strcmp (line, "OK") == 0) {
    out->type = SC_CTL_OK;
    return 0;
  }
  if (strncmp (line, "ERR ", 4) == 0)
    return parse_err (line + 4, out, why);
  if (strncmp (line, "* ", 2) == 0)
    return parse_data (line + 2, out, why);
  return fail (why, "reply is not a data line, OK or ERR");
}

const char *
sc_ctl_field (const struct sc_ctl_line *line, const char *key)
{
  size_t i;

  if (line->type != SC_CTL_DATA)
    return NULL;
  for (i = 0; i < line->nfields && i < SC_CTL_FIELDS_MAX; i++)
    if (strcmp (line->fields[i].key, key) == 0)
      return line->fields[i].value;
  return NULL;
}

int
sc_ctl_parse_u64 (const char *s, uint64_t *out)
{
  uint64_t v = 0;

  if (*s == '\0')
    return -EINVAL;
  for (; *s; s++) {
    unsigned d = (unsigned char) *s - '0';

    if (d > 9 || v > (UINT64_MAX - d) / 10)
      return -EINVAL;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* ---- errno names ----------------------------------------------------- */

/* Linux aliases (EWOULDBLOCK, EOPNOTSUPP, EDEADLOCK) are left out: each
 * number has one name, so the round trip is exact. */
#define E(e) { e, #e }
static const struct { int num; const char *name; } errnames[] = {
  E (EPERM), E (ENOENT), E (ESRCH), E (EINTR), E (EIO), E (ENXIO),
  E (E2BIG), E (EBADF), E (EAGAIN), E (ENOMEM), E (EACCES), E (EFAULT),
  E (EBUSY), E (EEXIST), E (EXDEV), E (ENODEV), E (ENOTDIR), E (EISDIR),
  E (EINVAL), E (ENFILE), E (EMFILE), E (ENOTTY), E (ETXTBSY), E (EFBIG),
  E (ENOSPC), E (ESPIPE), E (EROFS), E (EMLINK), E (EPIPE), E (ERANGE),
  E (EDEADLK), E (ENAMETOOLONG), E (ENOLCK), E (ENOSYS), E (ENOTEMPTY),
  E (ELOOP), E (ENODATA), E (ETIME), E (EPROTO), E (EBADMSG),
  E (EOVERFLOW), E (EILSEQ), E (ENOTSOCK), E (EMSGSIZE), E (ENOTSUP),
  E (EADDRINUSE), E (ENETDOWN), E (ECONNRESET), E (ENOBUFS),
  E (ENOTCONN), E (ESHUTDOWN), E (ETIMEDOUT), E (ECONNREFUSED),
  E (EALREADY), E (EINPROGRESS), E (ESTALE), E (EUCLEAN), E (EDQUOT),
  E (ECANCELED),
};
#undef E

const char *
sc_ctl_errname (int err)
{
  size_t i;

  if (err < 0)
    err = -err;
  for (i = 0; i < sizeof errnames / sizeof errnames[0]; i++)
    if (errnames[i].num == err)
      return errnames[i].name;
  return "EIO";
}

int
sc_ctl_errnum (const char *name)
{
  size_t i;

  for (i = 0; i < sizeof errnames / sizeof errnames[0]; i++)
    if (strcmp (errnames[i].name, name) == 0)
      return errnames[i].num;
  return EIO;
}

/* ---- text ------------------------------------------------------------ */

void
sc_ctl_format_time (uint64_t ns, char *buf, size_t len)
{
  time_t secs = ns / 1000000000;
  unsigned ms = ns / 1000000 % 1000;
  char date[32];
  struct tm tm;

  if (gmtime_r (&secs, &tm) == NULL ||
      strftime (date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
    strcpy (date, "?");
  snprintf (buf, len, "%s.%03uZ", date, ms);
}

void
sc_ctl_format_reason (const char *text, int err, char *buf, size_t len)
{
  if (err < 0)
    err = -err;
  if (err)
    snprintf (buf, len, "%s: %s", text, strerror (err));
  else
    snprintf (buf, len, "%s", text);
}

void
sc_ctl_snapshot_error (int err, const char *op, const char *name,
                       char *buf, size_t len)
{
  const char *sep = name ? ": " : "";

  if (err < 0)
    err = -err;
  if (!name)
    name = "";
  switch (err) {
  case ENOENT:
    snprintf (buf, len, "no such snapshot%s%s", sep, name);
    break;
  case EEXIST:
    snprintf (buf, len, "snapshot already exists%s%s", sep, name);
    break;
  case EINVAL:
    snprintf (buf, len, "invalid snapshot name%s%s", sep, name);
    break;
  case EMFILE:
    snprintf (buf, len, "too many snapshots");
    break;
  default:
    snprintf (buf, len, "cannot %s snapshot%s%s: %s",
              op, name[0] ? " " : "", name, strerror (err));
  }
}

void
sc_ctl_sanitize (char *s)
{
  for (; *s; s++)
    if (!is_text_char (*s))
      *s = '?';
}

/* ---- writing --------------------------------------------------------- */

/* send() with MSG_NOSIGNAL so a vanished peer is -EPIPE rather than a
 * signal that would kill nbdkit; write() for pipes and files (tests). */
/* The send deadline of this thread (sc_ctl_set_send_deadline). */
static __thread uint64_t send_deadline;

void
sc_ctl_set_send_deadline (uint64_t ns)
{
  send_deadline = ns;
}

/* Wait until FD is ready for EVENTS or the absolute DEADLINE (0: none,
 * return at once) passes: 0 when ready (or when poll cannot tell: the
 * read or send itself then reports), -EAGAIN when the deadline passed.
 * The time left is computed afresh before every read or send, so a peer
 * trickling bytes does not extend it.  With GRACE, a descriptor that is
 * ready at once still passes after the deadline (a reply to a request
 * that ran late goes out if the peer is reading). */
static int
wait_deadline (int fd, short events, uint64_t deadline, bool grace)
{
  if (deadline == 0)
    return 0;
  for (;;) {
    uint64_t now = sc_mono_ns ();
    struct pollfd p = { .fd = fd, .events = events };
    int ms, r;

    if (now >= deadline && !grace)
      return -EAGAIN;
    ms = now >= deadline ? 0 : (int) ((deadline - now + 999999) / 1000000);
    r = poll (&p, 1, ms);
    if (r > 0)
      return 0;
    if (r < 0 && errno != EINTR)
      return 0;
    if (r == 0 && ms == 0)
      return -EAGAIN;
  }
}

static int
write_all (int fd, const char *buf, size_t len)
{
  bool is_socket = true;

  while (len > 0) {
    int w = wait_deadline (fd, POLLOUT, send_deadline, true);
    if (w < 0)
      return w == -EAGAIN ? -ETIMEDOUT : w;

    ssize_t r = is_socket ? send (fd, buf, len, MSG_NOSIGNAL)
                          : write (fd, buf, len);

    if (r < 0) {
      if (is_socket && errno == ENOTSOCK) {
        is_socket = false;
        continue;
      }
      if (errno == EINTR)
        continue;
      return -errno;
    }
    buf += r;
    len -= r;
  }
  return 0;
}

/* A line being built; one byte is always kept free for the LF. */
struct line {
  size_t len;
  bool overflow;
  char buf[SC_CTL_LINE_MAX];
};

static void
put (struct line *l, const char *s, bool sanitize)
{
  for (; s && *s; s++) {
    if (l->len == sizeof l->buf - 1) {
      l->overflow = true;
      return;
    }
    l->buf[l->len++] = sanitize && !is_text_char (*s) ? '?' : *s;
  }
}

static int
put_end (int fd, struct line *l)
{
  if (l->overflow)
    return -EMSGSIZE;
  l->buf[l->len++] = '\n';
  return write_all (fd, l->buf, l->len);
}

int
sc_ctl_write_request (int fd, const char *verb,
                      const char *const *args, size_t nargs)
{
  struct line l = { 0 };
  struct sc_ctl_request req;
  char copy[SC_CTL_LINE_MAX];
  size_t i;

  put (&l, verb, false);
  for (i = 0; i < nargs; i++) {
    put (&l, " ", false);
    put (&l, args[i], false);
  }
  if (l.overflow)
    return -EINVAL;

  /* The server's own parser is the judge of what a valid request is. */
  memcpy (copy, l.buf, l.len);
  copy[l.len] = '\0';
  if (sc_ctl_parse_request (copy, &req, NULL) < 0 || req.nargs != nargs)
    return -EINVAL;
  return put_end (fd, &l);
}

static void
put_data (struct line *l, const char *kind,
          const struct sc_ctl_field *fields, size_t n)
{
  put (l, "* ", false);
  put (l, kind, false);
  for (size_t i = 0; i < n; i++) {
    put (l, "\t", false);
    put (l, fields[i].key, false);
    put (l, "=", false);
    put (l, fields[i].value, true);
  }
}

int
sc_ctl_write_data (int fd, const char *kind,
                   const struct sc_ctl_field *fields, size_t n)
{
  struct line l = { 0 };

  if (n > SC_CTL_FIELDS_MAX)
    return -EMSGSIZE;
  put_data (&l, kind, fields, n);
  return put_end (fd, &l);
}

int
sc_ctl_buffer_data (struct sc_ctl_out *o, const char *kind,
                    const struct sc_ctl_field *fields, size_t n)
{
  struct line l = { 0 };

  if (n > SC_CTL_FIELDS_MAX)
    return -EMSGSIZE;
  put_data (&l, kind, fields, n);
  if (l.overflow)
    return -EMSGSIZE;
  l.buf[l.len++] = '\n';
  if (o->len + l.len > sizeof o->buf) {
    int r = sc_ctl_flush (o);
    if (r < 0)
      return r;
  }
  memcpy (o->buf + o->len, l.buf, l.len);
  o->len += l.len;
  return 0;
}

int
sc_ctl_flush (struct sc_ctl_out *o)
{
  int r = write_all (o->fd, o->buf, o->len);
  o->len = 0;
  return r;
}

int
sc_ctl_write_ok (int fd)
{
  return write_all (fd, "OK\n", 3);
}

int
sc_ctl_write_err (int fd, int err, const char *fmt, ...)
{
  struct line l = { 0 };
  char message[SC_CTL_LINE_MAX];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (message, sizeof message, fmt, ap);
  va_end (ap);

  put (&l, "ERR ", false);
  put (&l, sc_ctl_errname (err), false);
  put (&l, " ", false);
  put (&l, message, true);
  l.overflow = false;           /* a truncated message is still an answer */
  return put_end (fd, &l);
}

/* ---- reading --------------------------------------------------------- */

void
sc_ctl_reader_init (struct sc_ctl_reader *r, int fd)
{
  r->fd = fd;
  r->deadline = 0;
  r->start = r->end = 0;
  r->skipping = 0;
}

void
sc_ctl_reader_set_deadline (struct sc_ctl_reader *r, uint64_t ns)
{
  r->deadline = ns;
}

int
sc_ctl_read_line (struct sc_ctl_reader *r, char **line, const char **why)
{
  size_t scanned = r->start;    /* buf[start..scanned) holds no LF */

  for (;;) {
    char *lf = memchr (r->buf + scanned, '\n', r->end - scanned);
    ssize_t n;

    if (lf && r->skipping) {
      /* The tail of an over-long line, already reported. */
      r->skipping = 0;
      r->start = scanned = lf + 1 - r->buf;
      continue;
    }
    if (lf) {
      char *s = r->buf + r->start;

      *lf = '\0';
      r->start = lf + 1 - r->buf;
      if (memchr (s, '\0', lf - s))
        return fail (why, "NUL byte in line");
      *line = s;
      return 1;
    }

    if (r->skipping)
      r->start = r->end;
    scanned = r->end;
    if (r->start > 0) {
      memmove (r->buf, r->buf + r->start, r->end - r->start);
      r->end -= r->start;
      scanned -= r->start;
      r->start = 0;
    }
    if (r->end == sizeof r->buf) {
      r->skipping = 1;
      r->start = r->end = 0;
      return fail (why, "line too long");
    }

    n = wait_deadline (r->fd, POLLIN, r->deadline, false);
    if (n < 0)
      return (int) n;
    n = read (r->fd, r->buf + r->end, sizeof r->buf - r->end);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (n == 0) {
      if (r->end == r->start)
        return 0;
      r->start = r->end;
      return fail (why, "input ends in the middle of a line");
    }
    r->end += n;
  }
}

