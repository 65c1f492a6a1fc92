/* shadowcopy: an image's backing chain as QEMU sees it (qemu-chain.h).
 *
 * qemu-img runs with its standard output and error on two pipes, read
 * together (poll) so that neither can fill and stall it; what it prints
 * is bounded (OUT_MAX), past which it is killed.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/json-read.h"
#include "tools/qemu-chain.h"

#define OUT_MAX (16u << 20)
#define ERR_MAX 1024u

struct output { char *s; size_t n, cap, max; bool over; };

static int
append (struct output *o, const char *s, size_t k)
{
  if (o->n + k > o->max) {
    o->over = true;
    k = o->max - o->n;
  }
  if (o->n + k + 1 > o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 4096;
    while (cap < o->n + k + 1)
      cap *= 2;
    char *p = realloc (o->s, cap);
    if (!p)
      return -ENOMEM;
    o->s = p;
    o->cap = cap;
  }
  memcpy (o->s + o->n, s, k);
  o->n += k;
  o->s[o->n] = '\0';
  return 0;
}

/* Run qemu-img info on path: its output in out, its first line of
 * errors in errline; 0, or a negative errno. */
static int
run_qemu_img (const char *path, const char *format, struct output *out,
              struct output *errout, int *status)
{
  int po[2], pe[2];
  pid_t pid;
  int r = 0;

  if (pipe2 (po, O_CLOEXEC) < 0)
    return -errno;
  if (pipe2 (pe, O_CLOEXEC) < 0) {
    r = -errno;
    close (po[0]);
    close (po[1]);
    return r;
  }
  fflush (NULL);
  pid = fork ();
  if (pid < 0) {
    r = -errno;
    close (po[0]); close (po[1]); close (pe[0]); close (pe[1]);
    return r;
  }
  if (pid == 0) {
    dup2 (po[1], STDOUT_FILENO);
    dup2 (pe[1], STDERR_FILENO);
    execlp ("qemu-img", "qemu-img", "info", "--backing-chain",
            "--output=json", "-f", format, path, (char *) NULL);
    dprintf (STDERR_FILENO, "cannot run qemu-img: %s\n", strerror (errno));
    _exit (127);
  }
  close (po[1]);
  close (pe[1]);

  struct pollfd fds[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
  struct output *outs[2] = { out, errout };
  int open_fds = 2;
  while (open_fds > 0 && r == 0) {
    if (poll (fds, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      r = -errno;
      break;
    }
    for (int i = 0; i < 2; i++) {
      char buf[65536];
      if (fds[i].fd < 0 || !fds[i].revents)
        continue;
      ssize_t k = read (fds[i].fd, buf, sizeof buf);
      if (k < 0 && errno == EINTR)
        continue;
      if (k <= 0) {
        close (fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
        continue;
      }
      if (append (outs[i], buf, (size_t) k) < 0)
        r = -ENOMEM;
      if (out->over)
        r = -EFBIG;
    }
  }
  for (int i = 0; i < 2; i++)
    if (fds[i].fd >= 0)
      close (fds[i].fd);
  if (r < 0)
    kill (pid, SIGKILL);
  while (waitpid (pid, status, 0) < 0 && errno == EINTR)
    ;
  return r;
}

int
sc_qemu_chain_read (const char *path, const char *format,
                    struct sc_qemu_chain *c, char *err, size_t errlen)
{
  struct output out = { .max = OUT_MAX }, errout = { .max = ERR_MAX };
  struct sc_jv doc;
  char why[256];
  int status = 0, r;

  memset (c, 0, sizeof *c);
  r = run_qemu_img (path, format, &out, &errout, &status);
  if (r < 0) {
    snprintf (err, errlen, "qemu-img info --backing-chain %s: %s", path,
              r == -EFBIG ? "too much output" : strerror (-r));
    goto out;
  }
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
    const char *e = errout.s ? errout.s : "";
    /* qemu-img's messages start "qemu-img: "; one line is enough. */
    if (strncmp (e, "qemu-img: ", 10) == 0)
      e += 10;
    snprintf (err, errlen, "qemu-img info --backing-chain %s failed: %.*s",
              path, (int) strcspn (e, "\n"), *e ? e : "(no message)");
    r = -EIO;
    goto out;
  }
  r = sc_jv_parse (out.s ? out.s : "", out.n, &doc, why, sizeof why);
  if (r < 0) {
    snprintf (err, errlen, "qemu-img info --backing-chain %s: its output "
              "is not JSON: %s", path, why);
    goto out;
  }
  if (doc.type != SC_JV_ARRAY || doc.n == 0) {
    snprintf (err, errlen, "qemu-img info --backing-chain %s: expected a "
              "list of images", path);
    r = -EINVAL;
    goto out_doc;
  }
  c->v = calloc (doc.n, sizeof *c->v);
  if (!c->v) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    r = -ENOMEM;
    goto out_doc;
  }
  for (size_t i = 0; i < doc.n; i++) {
    const char *fn = sc_jv_get_string (&doc.items[i], "filename");
    const char *fmt = sc_jv_get_string (&doc.items[i], "format");
    if (!fn || !fmt) {
      snprintf (err, errlen, "qemu-img info --backing-chain %s: image %zu "
                "has no filename or format", path, i + 1);
      r = -EINVAL;
      break;
    }
    if (!(c->v[i].filename = strdup (fn))) {
      snprintf (err, errlen, "%s", strerror (ENOMEM));
      r = -ENOMEM;
      break;
    }
    c->n = i + 1;
    snprintf (c->v[i].format, sizeof c->v[i].format, "%s", fmt);
    c->v[i].has_backing =
      sc_jv_get_string (&doc.items[i], "backing-filename") != NULL;
  }
  if (r < 0)
    sc_qemu_chain_free (c);
out_doc:
  sc_jv_free (&doc);
out:
  free (out.s);
  free (errout.s);
  return r;
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
