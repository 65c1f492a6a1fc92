/* shadowcopy: qemu-img run as a child process (qemu-img.h).
 *
 * Notes on the design
 *
 * The child's standard output and standard error are two pipes read
 * together with poll(2), so that neither can fill up and stall it.  Its
 * output is bounded (an info of one image is a few hundred bytes; more
 * than OUT_MAX is refused), its standard error kept up to ERR_MAX.
 *
 * `qemu-img info --output=json` is read by a small scanner of one JSON
 * object (or, with --backing-chain, the first object of an array): the
 * members asked for are taken at the top level, every other value is
 * skipped.  It never reads past the output and refuses anything it does
 * not understand.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/qemu-img.h"

extern char **environ;

#define OUT_MAX (1024 * 1024)
#define ERR_MAX 2048

/* stderr's lines joined by "; ", each without its "qemu-img: ". */
static void
one_line (char *text)
{
  char *w = text;
  const char *r = text;
  bool line_start = true;

  while (*r) {
    if (line_start && strncmp (r, "qemu-img: ", 10) == 0)
      r += 10;
    line_start = false;
    if (*r == '\n') {
      while (*r == '\n')
        r++;
      if (*r && w != text) {
        *w++ = ';';
        *w++ = ' ';
      }
      line_start = true;
      continue;
    }
    *w++ = *r++;
  }
  *w = '\0';
}

/* Run argv (argv[0] is "qemu-img").  *out (if out) gets its standard
 * output, NUL-terminated, malloc'd.  0 when it exited 0; else -EIO (or
 * the spawn's error), with what qemu-img said in err. */
static int
run (char *const argv[], char **out, char *err, size_t errlen)
{
  int opipe[2] = { -1, -1 }, epipe[2] = { -1, -1 };
  posix_spawn_file_actions_t fa;
  char *obuf = malloc (OUT_MAX + 1), ebuf[ERR_MAX + 1];
  size_t olen = 0, elen = 0;
  bool too_long = false;
  pid_t pid;
  int r, status;

  if (!obuf) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  if (pipe2 (opipe, O_CLOEXEC) < 0 || pipe2 (epipe, O_CLOEXEC) < 0) {
    r = -errno;
    snprintf (err, errlen, "cannot run qemu-img: %s",
              strerror (-r));
    goto out;
  }
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2 (&fa, opipe[1], 1);
  posix_spawn_file_actions_adddup2 (&fa, epipe[1], 2);
  r = -posix_spawnp (&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  close (opipe[1]);
  close (epipe[1]);
  opipe[1] = epipe[1] = -1;
  if (r < 0) {
    snprintf (err, errlen, "cannot run qemu-img: %s%s",
              strerror (-r), r == -ENOENT ? " (install qemu-utils)" : "");
    goto out;
  }

  struct pollfd p[2] = { { opipe[0], POLLIN, 0 }, { epipe[0], POLLIN, 0 } };
  while (p[0].fd >= 0 || p[1].fd >= 0) {
    if (poll (p, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    for (int i = 0; i < 2; i++) {
      char tmp[4096];
      ssize_t k;
      if (p[i].fd < 0 || !p[i].revents)
        continue;
      k = read (p[i].fd, tmp, sizeof tmp);
      if (k < 0 && errno == EINTR)
        continue;
      if (k <= 0) {
        p[i].fd = -1;           /* closed below, with the pipe */
        continue;
      }
      char *buf = i == 0 ? obuf : ebuf;
      size_t *len = i == 0 ? &olen : &elen;
      size_t cap = i == 0 ? OUT_MAX : ERR_MAX;
      size_t take = cap - *len < (size_t) k ? cap - *len : (size_t) k;
      if (i == 0 && take < (size_t) k)
        too_long = true;
      memcpy (buf + *len, tmp, take);
      *len += take;
    }
  }
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR) {
      status = -1;
      break;
    }
  obuf[olen] = '\0';
  ebuf[elen] = '\0';
  one_line (ebuf);
  if (status != -1 && WIFEXITED (status) && WEXITSTATUS (status) == 0
      && !too_long) {
    r = 0;
    if (out) {
      *out = obuf;
      obuf = NULL;
    }
  }
  else {
    r = -EIO;
    if (too_long)
      snprintf (err, errlen, "qemu-img wrote more than %d bytes",
                OUT_MAX);
    else if (*ebuf)
      snprintf (err, errlen, "qemu-img: %s", ebuf);
    else if (status != -1 && WIFSIGNALED (status))
      snprintf (err, errlen, "qemu-img was killed by signal %d",
                WTERMSIG (status));
    else
      snprintf (err, errlen, "qemu-img exited with status %d",
                status != -1 && WIFEXITED (status) ? WEXITSTATUS (status)
                : -1);
  }

out:
  for (int i = 0; i < 2; i++) {
    if (opipe[i] >= 0)
      close (opipe[i]);
    if (epipe[i] >= 0)
      close (epipe[i]);
  }
  free (obuf);
  return r;
}

/* path as an argument of qemu-img, malloc'd: a relative path gets "./",
 * so that a ':' before any '/' (a time of day in a file name such as
 * vol-2024-01-01T00:00:00.qcow2) is not taken for a protocol prefix, nor
 * a leading '-' for an option.  NULL: out of memory. */
static char *
file_arg (const char *path)
{
  char *arg;
  if (path[0] == '/')
    return strdup (path);
  return asprintf (&arg, "./%s", path) < 0 ? NULL : arg;
}

static int
no_memory (char *err, size_t errlen)
{
  snprintf (err, errlen, "%s", strerror (ENOMEM));
  return -ENOMEM;
}

int
sc_qemu_img_create_qcow2 (const char *path, uint64_t size,
                          const char *backing,
                          enum sc_image_format backing_format, char *err,
                          size_t errlen)
{
  char sz[32];
  char *argv[12], *file = file_arg (path);
  size_t n = 0;
  int r;

  if (!file)
    return no_memory (err, errlen);
  snprintf (sz, sizeof sz, "%" PRIu64, size);
  argv[n++] = (char *) "qemu-img";
  argv[n++] = (char *) "create";
  argv[n++] = (char *) "-q";
  argv[n++] = (char *) "-f";
  argv[n++] = (char *) "qcow2";
  if (backing) {
    argv[n++] = (char *) "-b";
    argv[n++] = (char *) backing;
    argv[n++] = (char *) "-F";
    argv[n++] = (char *) sc_image_format_name (backing_format);
  }
  argv[n++] = file;
  argv[n++] = sz;
  argv[n] = NULL;
  r = run (argv, NULL, err, errlen);
  free (file);
  return r;
}

int
sc_qemu_img_convert_to_raw (const char *src, enum sc_image_format f,
                            const char *dst, char *err, size_t errlen)
{
  char *from = file_arg (src), *to = file_arg (dst);
  int r;

  if (!from || !to) {
    free (from);
    free (to);
    return no_memory (err, errlen);
  }
  char *argv[] = {
    (char *) "qemu-img", (char *) "convert", (char *) "-q", (char *) "-n",
    (char *) "--target-is-zero", (char *) "-f",
    (char *) sc_image_format_name (f), (char *) "-O", (char *) "raw",
    from, to, NULL,
  };
  r = run (argv, NULL, err, errlen);
  free (from);
  free (to);
  return r;
}

/* ---- a small scanner of qemu-img's JSON --------------------------------- */

struct scan {
  const char *p, *end;
};

static void
ws (struct scan *s)
{
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\t'
                           || *s->p == '\r'))
    s->p++;
}

static bool
eat (struct scan *s, char c)
{
  ws (s);
  if (s->p < s->end && *s->p == c) {
    s->p++;
    return true;
  }
  return false;
}

/* A string into buf (NULL: skipped); *exact is cleared when it holds a
 * character outside ASCII or did not fit.  false: not a string. */
static bool
string (struct scan *s, char *buf, size_t len, bool *exact)
{
  size_t n = 0;
  bool ok = true;

  if (!eat (s, '"'))
    return false;
  while (s->p < s->end && *s->p != '"') {
    char c = *s->p++;
    if (c == '\\') {
      if (s->p >= s->end)
        return false;
      c = *s->p++;
      switch (c) {
      case '"': case '\\': case '/': break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'n': c = '\n'; break;
      case 'r': c = '\r'; break;
      case 't': c = '\t'; break;
      case 'u': {
        unsigned v = 0;
        if (s->end - s->p < 4)
          return false;
        for (int i = 0; i < 4; i++) {
          char h = *s->p++;
          v = v * 16 + (unsigned) (h >= '0' && h <= '9' ? h - '0'
                                   : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                   : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                   : 99);
          if (v > 0xffff)
            return false;
        }
        if (v == 0 || v > 0x7f)
          ok = false;
        c = (char) (v & 0x7f);
        break;
      }
      default:
        return false;
      }
    }
    else if ((unsigned char) c < 0x20 || (unsigned char) c > 0x7e)
      ok = false;
    if (buf) {
      if (n + 1 < len)
        buf[n++] = c;
      else
        ok = false;
    }
  }
  if (s->p >= s->end)
    return false;
  s->p++;
  if (buf)
    buf[n] = '\0';
  if (exact)
    *exact = ok;
  return true;
}

/* Skip any value (objects and arrays nested at most 32 deep). */
static bool
skip (struct scan *s, unsigned depth)
{
  ws (s);
  if (s->p >= s->end || depth > 32)
    return false;
  if (*s->p == '"')
    return string (s, NULL, 0, NULL);
  if (*s->p == '{' || *s->p == '[') {
    char close = *s->p == '{' ? '}' : ']';
    s->p++;
    if (eat (s, close))
      return true;
    do {
      if (close == '}' && (!string (s, NULL, 0, NULL) || !eat (s, ':')))
        return false;
      if (!skip (s, depth + 1))
        return false;
    } while (eat (s, ','));
    return eat (s, close);
  }
  const char *start = s->p;
  while (s->p < s->end && (strchr ("+-.eE", *s->p) || (*s->p >= '0'
         && *s->p <= '9') || (*s->p >= 'a' && *s->p <= 'z')))
    s->p++;
  return s->p > start;
}

static bool
number (struct scan *s, uint64_t *v)
{
  ws (s);
  const char *start = s->p;
  *v = 0;
  while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
    unsigned d = (unsigned) (*s->p++ - '0');
    if (*v > (UINT64_MAX - d) / 10)
      return false;
    *v = *v * 10 + d;
  }
  return s->p > start;
}

static bool
parse_info (const char *text, bool chain, struct sc_qemu_img_info *info)
{
  struct scan s = { text, text + strlen (text) };
  bool have_format = false, have_size = false, exact;

  memset (info, 0, sizeof *info);
  if (chain && !eat (&s, '['))
    return false;
  if (!eat (&s, '{'))
    return false;
  if (eat (&s, '}'))
    return false;
  do {
    char key[64];
    if (!string (&s, key, sizeof key, &exact) || !eat (&s, ':'))
      return false;
    if (strcmp (key, "format") == 0) {
      if (!string (&s, info->format, sizeof info->format, &exact) || !exact)
        return false;
      have_format = true;
    }
    else if (strcmp (key, "virtual-size") == 0) {
      if (!number (&s, &info->virtual_size))
        return false;
      have_size = true;
    }
    else if (strcmp (key, "backing-filename") == 0) {
      if (!string (&s, info->backing, sizeof info->backing,
                   &info->backing_exact))
        return false;
      info->has_backing = true;
    }
    else if (strcmp (key, "backing-filename-format") == 0) {
      if (!string (&s, info->backing_format, sizeof info->backing_format,
                   &exact))
        return false;
      if (!exact)
        info->backing_format[0] = '\0';
    }
    else if (!skip (&s, 1))
      return false;
  } while (eat (&s, ','));
  return eat (&s, '}') && have_format && have_size;
}

int
sc_qemu_img_info (const char *path, enum sc_image_format f, bool chain,
                  struct sc_qemu_img_info *info, char *err, size_t errlen)
{
  char *out = NULL, *file = file_arg (path);
  char *argv[10];
  size_t n = 0;
  int r;

  if (!file)
    return no_memory (err, errlen);
  argv[n++] = (char *) "qemu-img";
  argv[n++] = (char *) "info";
  argv[n++] = (char *) "--output=json";
  if (chain)
    argv[n++] = (char *) "--backing-chain";
  argv[n++] = (char *) "-f";
  argv[n++] = (char *) sc_image_format_name (f);
  argv[n++] = file;
  argv[n] = NULL;
  r = run (argv, &out, err, errlen);
  free (file);
  if (r < 0)
    return r;
  if (!parse_info (out, chain, info)) {
    snprintf (err, errlen, "qemu-img info said what shadowcopy cannot "
              "read");
    r = -EIO;
  }
  free (out);
  return r;
}
