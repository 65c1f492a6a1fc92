/* shadowcopy: a configuration file of key=value lines (config-file.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/config-file.h"

#define FILE_MAX (1u << 20)

static int __attribute__ ((format (printf, 5, 6)))
fail (int r, char *err, size_t errlen, const char *path, const char *fmt,
      ...)
{
  va_list ap;
  int n = snprintf (err, errlen, "%s:", path);

  if (n >= 0 && (size_t) n < errlen) {
    va_start (ap, fmt);
    vsnprintf (err + n, errlen - (size_t) n, fmt, ap);
    va_end (ap);
  }
  return r;
}

static bool
is_blank (char c)
{
  return c == ' ' || c == '\t';
}

static bool
key_ok (const char *k, size_t len)
{
  if (len == 0 || len > SC_CONFIG_KEY_MAX || k[0] < 'a' || k[0] > 'z')
    return false;
  for (size_t i = 0; i < len; i++) {
    char c = k[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_'))
      return false;
  }
  return true;
}

void
sc_config_free (struct sc_config_file *cf)
{
  for (size_t i = 0; i < cf->n; i++) {
    free (cf->entries[i].key);
    free (cf->entries[i].value);
  }
  free (cf->entries);
  free (cf->path);
  cf->entries = NULL;
  cf->path = NULL;
  cf->n = 0;
}

const struct sc_config_entry *
sc_config_get (const struct sc_config_file *cf, const char *key)
{
  for (size_t i = 0; i < cf->n; i++)
    if (strcmp (cf->entries[i].key, key) == 0)
      return &cf->entries[i];
  return NULL;
}

/* One line (without its LF) into cf: 0, or a negative errno (said). */
static int
parse_line (struct sc_config_file *cf, const char *line, size_t len,
            unsigned lineno, char *err, size_t errlen)
{
  const char *path = cf->path;

  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char) line[i];
    if (c == '\0')
      return fail (-EINVAL, err, errlen, path, "%u: a NUL byte", lineno);
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return fail (-EINVAL, err, errlen, path,
                   "%u: a control character (0x%02x)", lineno, c);
  }
  while (len && is_blank (line[len - 1]))
    len--;
  size_t s = 0;
  while (s < len && is_blank (line[s]))
    s++;
  if (s == len || line[s] == '#')
    return 0;

  const char *eq = memchr (line + s, '=', len - s);
  if (!eq)
    return fail (-EINVAL, err, errlen, path,
                 "%u: no '=' (lines are key = value)", lineno);
  size_t klen = (size_t) (eq - (line + s));
  while (klen && is_blank (line[s + klen - 1]))
    klen--;
  if (!key_ok (line + s, klen))
    return fail (-EINVAL, err, errlen, path, "%u: '%.*s': not a key (a "
                 "letter, then letters, digits, '-' or '_', at most %d)",
                 lineno, (int) (klen > 64 ? 64 : klen), line + s,
                 SC_CONFIG_KEY_MAX);
  size_t v = (size_t) (eq - line) + 1;
  while (v < len && is_blank (line[v]))
    v++;
  if (memchr (line + v, '\t', len - v))
    return fail (-EINVAL, err, errlen, path, "%u: a tab inside the value",
                 lineno);

  char key[SC_CONFIG_KEY_MAX + 1];
  memcpy (key, line + s, klen);
  key[klen] = '\0';
  const struct sc_config_entry *dup = sc_config_get (cf, key);
  if (dup)
    return fail (-EINVAL, err, errlen, path, "%u: %s= given twice (first "
                 "at %s:%u)", lineno, key, path, dup->line);
  if (cf->n == SC_CONFIG_ENTRIES_MAX)
    return fail (-EINVAL, err, errlen, path, "%u: more than %d entries",
                 lineno, SC_CONFIG_ENTRIES_MAX);

  struct sc_config_entry *e = realloc (cf->entries,
                                       (cf->n + 1) * sizeof *e);
  if (!e)
    return fail (-ENOMEM, err, errlen, path, "%u: out of memory", lineno);
  cf->entries = e;
  e = &cf->entries[cf->n];
  e->key = strdup (key);
  e->value = strndup (line + v, len - v);
  e->line = lineno;
  if (!e->key || !e->value) {
    free (e->key);
    free (e->value);
    return fail (-ENOMEM, err, errlen, path, "%u: out of memory", lineno);
  }
  cf->n++;
  return 0;
}

int
sc_config_parse (const char *path, const char *text, size_t len,
                 struct sc_config_file *out, char *err, size_t errlen)
{
  struct sc_config_file cf = { .path = strdup (path) };
  unsigned lineno = 0;
  size_t pos = 0;

  if (!cf.path)
    return fail (-ENOMEM, err, errlen, path, " out of memory");
  while (pos < len) {
    const char *nl = memchr (text + pos, '\n', len - pos);
    size_t end = nl ? (size_t) (nl - text) : len;
    size_t n = end - pos;

    lineno++;
    /* A CR before the LF: a file written on another system, taken as
     * it was meant. */
    if (n && text[pos + n - 1] == '\r')
      n--;
    if (n > SC_CONFIG_LINE_MAX) {
      sc_config_free (&cf);
      return fail (-EINVAL, err, errlen, path, "%u: longer than %d bytes",
                   lineno, SC_CONFIG_LINE_MAX);
    }
    int r = parse_line (&cf, text + pos, n, lineno, err, errlen);
    if (r < 0) {
      sc_config_free (&cf);
      return r;
    }
    pos = end + 1;
  }
  *out = cf;
  return 0;
}

int
sc_config_read (const char *path, struct sc_config_file *out, char *err,
                size_t errlen)
{
  struct stat st;
  /* O_NONBLOCK: a FIFO (or a device) would block open() until a writer
   * came; it is refused below instead, and cleared for a regular file. */
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  int r, fl;

  if (fd == -1)
    return fail (-errno, err, errlen, path, " %s", strerror (errno));
  if (fstat (fd, &st) == -1) {
    r = -errno;
    close (fd);
    return fail (r, err, errlen, path, " %s", strerror (-r));
  }
  if (!S_ISREG (st.st_mode)) {
    close (fd);
    return fail (-EINVAL, err, errlen, path, " not a regular file");
  }
  if ((fl = fcntl (fd, F_GETFL)) == -1 ||
      fcntl (fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
    r = -errno;
    close (fd);
    return fail (r, err, errlen, path, " %s", strerror (-r));
  }
  if (st.st_size > (off_t) FILE_MAX) {
    close (fd);
    return fail (-EFBIG, err, errlen, path, " larger than 1 MiB");
  }
  char *buf = malloc ((size_t) st.st_size + 1);
  size_t got = 0;
  if (!buf) {
    close (fd);
    return fail (-ENOMEM, err, errlen, path, " out of memory");
  }
  for (;;) {
    ssize_t k = read (fd, buf + got, (size_t) st.st_size + 1 - got);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0) {
      r = -errno;
      free (buf);
      close (fd);
      return fail (r, err, errlen, path, " %s", strerror (-r));
    }
    if (k == 0)
      break;
    got += (size_t) k;
    if (got > (size_t) st.st_size) {       /* it grew as we read */
      free (buf);
      close (fd);
      return fail (-EAGAIN, err, errlen, path, " changed while read");
    }
  }
  close (fd);
  r = sc_config_parse (path, buf, got, out, err, errlen);
  free (buf);
  return r;
}
