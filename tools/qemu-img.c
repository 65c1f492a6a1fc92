/* shadowcopy: qemu-img run as a child process (qemu-img.h).
 *
 * Notes on the design
 *
 * The child's standard output and standard error are two pipes read
 * together with poll(2), so that neither can fill up and stall it.  Its
 * output is bounded (an info of one image is a few hundred bytes, of a
 * chain a few hundred per link; more than OUT_MAX is refused), its
 * standard error kept up to ERR_MAX.
 *
 * `qemu-img info --output=json` is read with the strict JSON reader of
 * json-read.h (a backing file's name is whatever an image says, so it is
 * outside input: tests/fuzz/fuzz-qemu-info.c feeds the same path).
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

#include "tools/json-read.h"
#include "tools/qemu-img.h"

extern char **environ;

#define OUT_MAX (16u << 20)
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

/* What a child wrote on one pipe: up to max bytes kept, NUL-terminated;
 * over says that more came. */
struct capture {
  char *buf;
  size_t len, cap, max;
  bool over;
};

static void
capture_add (struct capture *c, const char *s, size_t k)
{
  if (c->len + k > c->cap && c->cap < c->max) {
    size_t want = c->cap ? c->cap : 4096;
    while (want < c->len + k && want < c->max)
      want *= 2;
    if (want > c->max)
      want = c->max;
    char *grown = realloc (c->buf, want + 1);
    if (grown) {
      c->buf = grown;
      c->cap = want;
    }
  }
  size_t take = c->cap - c->len < k ? c->cap - c->len : k;
  if (take < k)
    c->over = true;
  if (take) {
    memcpy (c->buf + c->len, s, take);
    c->len += take;
  }
  if (c->buf)
    c->buf[c->len] = '\0';
}

/* Read the child's standard output and error (fds[0], fds[1]) together
 * until both end, so that neither pipe can fill and stall it. */
static void
collect (const int fds[2], struct capture c[2])
{
  struct pollfd p[2] = { { fds[0], POLLIN, 0 }, { fds[1], POLLIN, 0 } };
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
      if (k <= 0)
        p[i].fd = -1;           /* closed by the caller, with the pipe */
      else
        capture_add (&c[i], tmp, (size_t) k);
    }
  }
}

/* Run argv (argv[0] is "qemu-img").  *out (if out) gets its standard
 * output, NUL-terminated, malloc'd.  0 when it exited 0; else -EIO (or
 * the spawn's error), with what qemu-img said in err. */
static int
run (char *const argv[], char **out, char *err, size_t errlen)
{
  int opipe[2] = { -1, -1 }, epipe[2] = { -1, -1 };
  struct capture c[2] = { { .max = OUT_MAX }, { .max = ERR_MAX } };
  posix_spawn_file_actions_t fa;
  pid_t pid;
  int r, status;

  if (pipe2 (opipe, O_CLOEXEC) < 0 || pipe2 (epipe, O_CLOEXEC) < 0) {
    r = -errno;
    snprintf (err, errlen, "cannot run qemu-img: %s", strerror (-r));
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
  collect ((int[2]) { opipe[0], epipe[0] }, c);
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR) {
      status = -1;
      break;
    }
  char none[1] = "";
  char *ebuf = c[1].buf ? c[1].buf : none;
  one_line (ebuf);
  if (status != -1 && WIFEXITED (status) && WEXITSTATUS (status) == 0
      && !c[0].over) {
    r = 0;
    if (out) {
      *out = c[0].buf ? c[0].buf : strdup ("");
      c[0].buf = NULL;
      if (!*out)
        r = -ENOMEM;
    }
  }
  else {
    r = -EIO;
    if (c[0].over)
      snprintf (err, errlen, "qemu-img wrote more than %u bytes", OUT_MAX);
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
  free (c[0].buf);
  free (c[1].buf);
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

/* A strict decimal number (a JSON number's text) into *v. */
static bool
number (const char *text, uint64_t *v)
{
  *v = 0;
  if (!text || !*text)
    return false;
  for (const char *p = text; *p; p++) {
    if (*p < '0' || *p > '9')
      return false;
    unsigned d = (unsigned) (*p - '0');
    if (*v > (UINT64_MAX - d) / 10)
      return false;
    *v = *v * 10 + d;
  }
  return true;
}

/* `qemu-img info --output=json [--backing-chain]` of path, read into
 * doc (an object; with chain, an array of them, from path down). */
static int
info_json (const char *path, enum sc_image_format f, bool chain,
           struct sc_jv *doc, char *err, size_t errlen)
{
  char *out = NULL, *file = file_arg (path), why[256];
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
  r = sc_jv_parse (out, strlen (out), doc, why, sizeof why);
  free (out);
  if (r < 0) {
    snprintf (err, errlen, "qemu-img info said what shadowcopy cannot "
              "read: %s", why);
    return -EIO;
  }
  if (chain ? doc->type != SC_JV_ARRAY || doc->n == 0
      : doc->type != SC_JV_OBJECT) {
    sc_jv_free (doc);
    snprintf (err, errlen, "qemu-img info said what shadowcopy cannot "
              "read: not %s", chain ? "a list of images" : "an object");
    return -EIO;
  }
  return 0;
}

int
sc_qemu_img_parse_info (const struct sc_jv *img, struct sc_qemu_img_info *info)
{
  const char *format = sc_jv_get_string (img, "format");
  const struct sc_jv *size = sc_jv_get (img, "virtual-size");
  const char *backing = sc_jv_get_string (img, "backing-filename");
  const char *bformat = sc_jv_get_string (img, "backing-filename-format");

  memset (info, 0, sizeof *info);
  if (!format || !*format || strlen (format) >= sizeof info->format || !size
      || size->type != SC_JV_NUMBER || !number (size->s, &info->virtual_size))
    return -EINVAL;
  strcpy (info->format, format);
  if (backing) {
    info->has_backing = true;
    info->backing_exact = strlen (backing) < sizeof info->backing;
    if (info->backing_exact)
      strcpy (info->backing, backing);
  }
  if (bformat && strlen (bformat) < sizeof info->backing_format)
    strcpy (info->backing_format, bformat);
  return 0;
}

int
sc_qemu_img_info (const char *path, enum sc_image_format f, bool chain,
                  struct sc_qemu_img_info *info, char *err, size_t errlen)
{
  struct sc_jv doc;
  int r = info_json (path, f, chain, &doc, err, errlen);

  if (r < 0)
    return r;
  if (sc_qemu_img_parse_info (chain ? &doc.items[0] : &doc, info) < 0) {
    snprintf (err, errlen, "qemu-img info said what shadowcopy cannot "
              "read: no format or virtual size");
    r = -EIO;
  }
  sc_jv_free (&doc);
  return r;
}

int
sc_qemu_img_chain (const char *path, enum sc_image_format f,
                   struct sc_qemu_chain *c, char *err, size_t errlen)
{
  struct sc_jv doc;
  char why[1536];
  int r;

  memset (c, 0, sizeof *c);
  r = info_json (path, f, true, &doc, why, sizeof why);
  if (r < 0) {
    snprintf (err, errlen, "qemu-img info --backing-chain %s failed: %s",
              path, why);
    return r;
  }
  r = sc_qemu_chain_from_json (&doc, c, why, sizeof why);
  if (r < 0)
    snprintf (err, errlen, "qemu-img info --backing-chain %s: %s", path,
              why);
  sc_jv_free (&doc);
  return r;
}

int
sc_qemu_chain_from_json (const struct sc_jv *doc, struct sc_qemu_chain *c,
                         char *err, size_t errlen)
{
  memset (c, 0, sizeof *c);
  if (doc->type != SC_JV_ARRAY || doc->n == 0) {
    snprintf (err, errlen, "expected a list of images");
    return -EINVAL;
  }
  c->v = calloc (doc->n, sizeof *c->v);
  if (!c->v)
    return no_memory (err, errlen);
  for (size_t i = 0; i < doc->n; i++) {
    const char *fn = sc_jv_get_string (&doc->items[i], "filename");
    const char *fmt = sc_jv_get_string (&doc->items[i], "format");
    if (!fn || !fmt) {
      snprintf (err, errlen, "image %zu has no filename or format", i + 1);
      sc_qemu_chain_free (c);
      return -EINVAL;
    }
    if (!(c->v[i].filename = strdup (fn))) {
      sc_qemu_chain_free (c);
      return no_memory (err, errlen);
    }
    c->n = i + 1;
    snprintf (c->v[i].format, sizeof c->v[i].format, "%s", fmt);
    c->v[i].has_backing =
      sc_jv_get_string (&doc->items[i], "backing-filename") != NULL;
  }
  return 0;
}

void
sc_qemu_chain_free (struct sc_qemu_chain *c)
{
  for (size_t i = 0; i < c->n; i++)
    free (c->v[i].filename);
  free (c->v);
  c->v = NULL;
  c->n = 0;
}
