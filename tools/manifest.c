/* shadowcopy: a backup's manifest (manifest.h).
 *
 * Notes on the design
 *
 * The parser is a small recursive-descent reader of exactly one JSON
 * object.  Known members are read into fixed fields and checked one by
 * one; the rest are skipped by skip_value, whose recursion is bounded by
 * SC_MANIFEST_DEPTH_MAX.  Strings are decoded (escapes, \uXXXX into
 * UTF-8; NUL and lone surrogates refused) into bounded buffers; numbers
 * are unsigned integers without sign, fraction or leading zeros, and
 * must fit in 64 bits.  After the object only white space may follow.
 * The checks across members (lengths, presence) come last, in check().
 *
 * The writer is tools/json.c, whose output this parser reads back.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/json.h"
#include "tools/durable.h"
#include "tools/manifest.h"

struct reader {
  const char *p, *end;
  char *err;
  size_t errlen;
};

static int __attribute__ ((format (printf, 2, 3)))
bad (struct reader *r, const char *fmt, ...)
{
  va_list ap;
  char msg[256];

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (r->err && r->errlen)
    snprintf (r->err, r->errlen, "%s", msg);
  return -EINVAL;
}

static void
skip_ws (struct reader *r)
{
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' ||
                           *r->p == '\r'))
    r->p++;
}

static int
expect (struct reader *r, char c)
{
  skip_ws (r);
  if (r->p >= r->end || *r->p != c)
    return bad (r, "expected '%c'", c);
  r->p++;
  return 0;
}

static int
hex4 (struct reader *r, unsigned *out)
{
  unsigned v = 0;

  if (r->end - r->p < 4)
    return bad (r, "short \\u escape");
  for (int i = 0; i < 4; i++) {
    char c = *r->p++;
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= (unsigned) (c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= (unsigned) (c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= (unsigned) (c - 'A' + 10);
    else
      return bad (r, "bad \\u escape");
  }
  *out = v;
  return 0;
}

/* The length of the well-formed UTF-8 sequence at p (before end), or 0:
 * the rules of tools/json.c, so what this accepts prints back the same. */
static size_t
utf8_length (const unsigned char *p, const unsigned char *end)
{
  unsigned char lo = 0x80, hi = 0xbf;
  size_t n;

  if (p[0] < 0x80)
    return 1;
  if (p[0] >= 0xc2 && p[0] <= 0xdf)
    n = 2;
  else if (p[0] >= 0xe0 && p[0] <= 0xef) {
    n = 3;
    lo = p[0] == 0xe0 ? 0xa0 : lo;      /* overlong */
    hi = p[0] == 0xed ? 0x9f : hi;      /* UTF-16 surrogates */
  }
  else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
    n = 4;
    lo = p[0] == 0xf0 ? 0x90 : lo;      /* overlong */
    hi = p[0] == 0xf4 ? 0x8f : hi;      /* beyond U+10FFFF */
  }
  else
    return 0;
  if ((size_t) (end - p) < n || p[1] < lo || p[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if (p[i] < 0x80 || p[i] > 0xbf)
      return 0;
  return n;
}

/* A string into buf (NUL-terminated; NULL: skipped).  -EINVAL when it
 * is malformed or does not fit. */
static int
read_string (struct reader *r, char *buf, size_t len)
{
  size_t n = 0;

  if (expect (r, '"') < 0)
    return -EINVAL;
  for (;;) {
    char out[4];
    size_t k = 1;

    if (r->p >= r->end)
      return bad (r, "unterminated string");
    unsigned char c = (unsigned char) *r->p++;
    if (c == '"')
      break;
    if (c < 0x20)
      return bad (r, "control character in a string");
    out[0] = (char) c;
    if (c >= 0x80) {
      k = utf8_length ((const unsigned char *) r->p - 1,
                       (const unsigned char *) r->end);
      if (k == 0)
        return bad (r, "a string is not UTF-8");
      memcpy (out, r->p - 1, k);
      r->p += k - 1;
    }
    if (c == '\\') {
      if (r->p >= r->end)
        return bad (r, "unterminated string");
      char e = *r->p++;
      switch (e) {
      case '"': case '\\': case '/': out[0] = e; break;
      case 'b': out[0] = '\b'; break;
      case 'f': out[0] = '\f'; break;
      case 'n': out[0] = '\n'; break;
      case 'r': out[0] = '\r'; break;
      case 't': out[0] = '\t'; break;
      case 'u': {
        unsigned u = 0;
        if (hex4 (r, &u) < 0)
          return -EINVAL;
        if (u == 0 || (u >= 0xd800 && u <= 0xdfff))
          return bad (r, "\\u%04x is not allowed in a string", u);
        if (u < 0x80)
          out[0] = (char) u;
        else if (u < 0x800) {
          out[0] = (char) (0xc0 | (u >> 6));
          out[1] = (char) (0x80 | (u & 0x3f));
          k = 2;
        }
        else {
          out[0] = (char) (0xe0 | (u >> 12));
          out[1] = (char) (0x80 | ((u >> 6) & 0x3f));
          out[2] = (char) (0x80 | (u & 0x3f));
          k = 3;
        }
        break;
      }
      default:
        return bad (r, "bad escape in a string");
      }
    }
    if (buf) {
      if (n + k >= len)
        return bad (r, "string too long");
      memcpy (buf + n, out, k);
    }
    n += k;
  }
  if (buf)
    buf[n] = '\0';
  return 0;
}

static int
read_uint (struct reader *r, uint64_t *out)
{
  uint64_t v = 0;
  const char *start;

  skip_ws (r);
  start = r->p;
  while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
    unsigned d = (unsigned) (*r->p - '0');
    if (v > (UINT64_MAX - d) / 10)
      return bad (r, "number too large");
    v = v * 10 + d;
    r->p++;
  }
  if (r->p == start)
    return bad (r, "expected an unsigned integer");
  if (r->p - start > 1 && *start == '0')
    return bad (r, "number with a leading zero");
  if (r->p < r->end && (*r->p == '.' || *r->p == 'e' || *r->p == 'E'))
    return bad (r, "expected an integer");
  *out = v;
  return 0;
}

static int
literal (struct reader *r, const char *word)
{
  size_t n = strlen (word);

  if ((size_t) (r->end - r->p) < n || memcmp (r->p, word, n) != 0)
    return bad (r, "bad value");
  r->p += n;
  return 0;
}

/* Any JSON value, skipped: a member this version does not know. */
static int
skip_value (struct reader *r, unsigned depth)
{
  uint64_t ignored;

  if (depth > SC_MANIFEST_DEPTH_MAX)
    return bad (r, "nested too deep");
  skip_ws (r);
  if (r->p >= r->end)
    return bad (r, "expected a value");
  switch (*r->p) {
  case '"':
    return read_string (r, NULL, 0);
  case 't':
    return literal (r, "true");
  case 'f':
    return literal (r, "false");
  case 'n':
    return literal (r, "null");
  case '-':
    r->p++;
    return read_uint (r, &ignored);     /* integers only, here too */
  case '[':
  case '{': {
    char close = *r->p == '[' ? ']' : '}';
    bool object = close == '}';
    r->p++;
    skip_ws (r);
    if (r->p < r->end && *r->p == close) {
      r->p++;
      return 0;
    }
    for (;;) {
      if (object && (read_string (r, NULL, 0) < 0 || expect (r, ':') < 0))
        return -EINVAL;
      if (skip_value (r, depth + 1) < 0)
        return -EINVAL;
      skip_ws (r);
      if (r->p < r->end && *r->p == ',') {
        r->p++;
        continue;
      }
      return expect (r, close);
    }
  }
  default:
    return read_uint (r, &ignored);
  }
}

static bool
uuid_ok (const char *s)
{
  uint8_t id[16];
  return sc_uuid_parse (s, id) == 0;
}

static int
read_crcs (struct reader *r, struct sc_manifest *m)
{
  size_t cap = 0;

  if (expect (r, '[') < 0)
    return -EINVAL;
  skip_ws (r);
  if (r->p < r->end && *r->p == ']') {
    r->p++;
    return 0;
  }
  for (;;) {
    uint64_t v;
    if (read_uint (r, &v) < 0)
      return -EINVAL;
    if (v > UINT32_MAX)
      return bad (r, "block-crc32c: %" PRIu64 " is not a CRC32C", v);
    if (m->nblocks == cap) {
      size_t ncap = cap ? cap * 2 : 64;
      uint32_t *n = reallocarray (m->crc, ncap, sizeof *n);
      if (!n)
        return -ENOMEM;
      m->crc = n;
      cap = ncap;
    }
    m->crc[m->nblocks++] = (uint32_t) v;
    skip_ws (r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      continue;
    }
    return expect (r, ']');
  }
}

/* ---- the writers' results ------------------------------------------ */

/* Member k (an index into the keys given to read_object) of an object,
 * read by its reader: 0 or -EINVAL (said) / -ENOMEM. */
typedef int (*member_fn) (struct reader *r, size_t k, void *opaque);
/* One element of an array (index i). */
typedef int (*element_fn) (struct reader *r, size_t i, void *opaque);

/* An object at `depth`: the members named in keys go to fn, at most once
 * each and every one of them required; others are skipped (a newer
 * writer's).  `what` names it in messages. */
static int
read_object (struct reader *r, const char *what, const char *const *keys,
             size_t nkeys, member_fn fn, void *opaque, unsigned depth)
{
  bool seen[8] = { false };

  if (expect (r, '{') < 0)
    return -EINVAL;
  skip_ws (r);
  if (r->p < r->end && *r->p == '}')
    r->p++;
  else
    for (;;) {
      char key[64];
      size_t k;
      int ret;

      if (read_string (r, key, sizeof key) < 0 || expect (r, ':') < 0)
        return -EINVAL;
      for (k = 0; k < nkeys; k++)
        if (strcmp (key, keys[k]) == 0)
          break;
      if (k < nkeys && seen[k])
        return bad (r, "%s: %s given twice", what, keys[k]);
      if (k < nkeys) {
        seen[k] = true;
        if ((ret = fn (r, k, opaque)) < 0)
          return ret;
      }
      else if (skip_value (r, depth + 1) < 0)
        return -EINVAL;
      skip_ws (r);
      if (r->p < r->end && *r->p == ',') {
        r->p++;
        continue;
      }
      if (expect (r, '}') < 0)
        return -EINVAL;
      break;
    }
  for (size_t k = 0; k < nkeys; k++)
    if (!seen[k])
      return bad (r, "%s: no %s", what, keys[k]);
  return 0;
}

/* An array: each element to fn. */
static int
read_array (struct reader *r, element_fn fn, void *opaque)
{
  int ret;

  if (expect (r, '[') < 0)
    return -EINVAL;
  skip_ws (r);
  if (r->p < r->end && *r->p == ']') {
    r->p++;
    return 0;
  }
  for (size_t i = 0;; i++) {
    if ((ret = fn (r, i, opaque)) < 0)
      return ret;
    skip_ws (r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      continue;
    }
    return expect (r, ']');
  }
}

static bool
phase_name_ok (const char *s)
{
  if (!*s)
    return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || *s == '-'))
      return false;
  return true;
}

/* Depths: writers 1, its array's writers 2, their phases 3, each phase 4. */
static const char *const phase_keys[] = { "phase", "result", "output",
                                          "time" };

struct phase_ctx { struct sc_manifest_phase *p; char what[48]; };

static int
phase_member (struct reader *r, size_t k, void *opaque)
{
  struct phase_ctx *x = opaque;
  struct sc_manifest_phase *p = x->p;
  int ret;

  switch (k) {
  case 0:
    ret = read_string (r, p->phase, sizeof p->phase);
    if (ret == 0 && !phase_name_ok (p->phase))
      return bad (r, "%s: phase is not a phase name", x->what);
    return ret;
  case 1:
    ret = read_string (r, p->result, sizeof p->result);
    if (ret == 0 && !p->result[0])
      return bad (r, "%s: result is empty", x->what);
    return ret;
  case 2: return read_string (r, p->output, sizeof p->output);
  default: return read_string (r, p->time, sizeof p->time);
  }
}

static int
phase_element (struct reader *r, size_t i, void *opaque)
{
  struct sc_manifest_writer *w = opaque;
  struct phase_ctx x;

  if (i >= SC_MANIFEST_PHASES_MAX)
    return bad (r, "a writer has more than %d phases",
                SC_MANIFEST_PHASES_MAX);
  x.p = &w->phases[i];
  w->nphases = i + 1;
  snprintf (x.what, sizeof x.what, "phase %zu", i + 1);
  return read_object (r, x.what, phase_keys, 4, phase_member, &x, 4);
}

static const char *const writer_keys[] = { "name", "phases" };

static int
writer_member (struct reader *r, size_t k, void *opaque)
{
  struct sc_manifest_writer *w = opaque;
  int ret;

  if (k == 1)
    return read_array (r, phase_element, w);
  ret = read_string (r, w->name, sizeof w->name);
  if (ret == 0 && !w->name[0])
    return bad (r, "a writer's name is empty");
  return ret;
}

static int
writer_element (struct reader *r, size_t i, void *opaque)
{
  struct sc_manifest *m = opaque;
  struct sc_manifest_writer *w;
  int ret;

  (void) i;
  ret = sc_manifest_add_writer (m, "", &w);
  if (ret == -E2BIG)
    return bad (r, "more than %d writers", SC_MANIFEST_WRITERS_MAX);
  if (ret < 0)
    return ret;
  return read_object (r, "a writer", writer_keys, 2, writer_member, w, 2);
}

static int
read_writers (struct reader *r, struct sc_manifest *m)
{
  m->have_writers = true;
  return read_array (r, writer_element, m);
}

int
sc_manifest_add_writer (struct sc_manifest *m, const char *name,
                        struct sc_manifest_writer **out)
{
  struct sc_manifest_writer *v;
  size_t n;

  if (m->nwriters == SC_MANIFEST_WRITERS_MAX)
    return -E2BIG;
  v = reallocarray (m->writers, m->nwriters + 1, sizeof *v);
  if (!v)
    return -ENOMEM;
  m->writers = v;
  m->have_writers = true;
  *out = &v[m->nwriters++];
  memset (*out, 0, sizeof **out);
  /* Truncated at a character's start, so it stays UTF-8. */
  n = strlen (name);
  if (n >= sizeof (*out)->name) {
    n = sizeof (*out)->name - 1;
    while (n && ((unsigned char) name[n] & 0xc0) == 0x80)
      n--;
  }
  memcpy ((*out)->name, name, n);
  return 0;
}

int
sc_manifest_set_writers (struct sc_manifest *m,
                         const struct sc_manifest_writer *w, size_t n)
{
  struct sc_manifest_writer *v = NULL;

  if (n && !(v = malloc (n * sizeof *v)))
    return -ENOMEM;
  if (n)
    memcpy (v, w, n * sizeof *v);
  free (m->writers);
  m->writers = v;
  m->nwriters = n;
  m->have_writers = true;
  return 0;
}

/* ---- the manifest ---------------------------------------------------- */

enum member {
  M_VERSION, M_FORMAT, M_VOLUME, M_SNAP_NAME, M_SNAP_ID, M_SNAP_UUID,
  M_BASE_UUID, M_PREV, M_CHUNK, M_SIZE, M_START, M_END, M_READ, M_WRITTEN,
  M_ZEROED, M_BLOCK, M_CRC, M_WRITERS, M_COUNT
};

static const char *const member_names[M_COUNT] = {
  [M_VERSION] = "format-version", [M_FORMAT] = "format",
  [M_VOLUME] = "volume-uuid", [M_SNAP_NAME] = "snapshot-name",
  [M_SNAP_ID] = "snapshot-id", [M_SNAP_UUID] = "snapshot-uuid",
  [M_BASE_UUID] = "base-uuid", [M_PREV] = "prev-manifest",
  [M_CHUNK] = "chunk-size", [M_SIZE] = "volume-size",
  [M_START] = "start-time", [M_END] = "end-time",
  [M_READ] = "bytes-read", [M_WRITTEN] = "bytes-written",
  [M_ZEROED] = "bytes-zeroed", [M_BLOCK] = "block-size",
  [M_CRC] = "block-crc32c", [M_WRITERS] = "writers",
};

static int
read_member (struct reader *r, enum member k, struct sc_manifest *m)
{
  switch (k) {
  case M_VERSION: return read_uint (r, &m->version);
  case M_FORMAT: return read_string (r, m->format, sizeof m->format);
  case M_VOLUME:
    return read_string (r, m->volume_uuid, sizeof m->volume_uuid);
  case M_SNAP_NAME:
    return read_string (r, m->snapshot_name, sizeof m->snapshot_name);
  case M_SNAP_ID: return read_uint (r, &m->snapshot_id);
  case M_SNAP_UUID:
    return read_string (r, m->snapshot_uuid, sizeof m->snapshot_uuid);
  case M_BASE_UUID:
    return read_string (r, m->base_uuid, sizeof m->base_uuid);
  case M_PREV:
    return read_string (r, m->prev_manifest, sizeof m->prev_manifest);
  case M_CHUNK: return read_uint (r, &m->chunk_size);
  case M_SIZE: return read_uint (r, &m->volume_size);
  case M_START: return read_string (r, m->start_time, sizeof m->start_time);
  case M_END: return read_string (r, m->end_time, sizeof m->end_time);
  case M_READ: return read_uint (r, &m->bytes_read);
  case M_WRITTEN: return read_uint (r, &m->bytes_written);
  case M_ZEROED: return read_uint (r, &m->bytes_zeroed);
  case M_BLOCK: return read_uint (r, &m->block_size);
  case M_CRC: return read_crcs (r, m);
  case M_WRITERS: return read_writers (r, m);
  case M_COUNT: break;
  }
  return -EINVAL;
}

/* The checks across members, once all are in. */
static int
check (struct reader *r, const struct sc_manifest *m, const bool *seen)
{
  static const enum member required[] = {
    M_VERSION, M_FORMAT, M_VOLUME, M_SNAP_NAME, M_SNAP_ID, M_SNAP_UUID,
    M_CHUNK, M_SIZE, M_START, M_END, M_READ, M_WRITTEN, M_ZEROED, M_BLOCK,
    M_CRC,
  };

  if (!seen[M_VERSION])
    return bad (r, "no format-version");
  if (m->version != SC_MANIFEST_VERSION)
    return bad (r, "format-version %" PRIu64 " (this shadowcopy reads %d)",
                m->version, SC_MANIFEST_VERSION);
  for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
    if (!seen[required[i]])
      return bad (r, "no %s", member_names[required[i]]);
  if (strcmp (m->format, "raw") != 0 && strcmp (m->format, "qcow2") != 0)
    return bad (r, "format \"%s\" (this shadowcopy knows \"raw\" and "
                "\"qcow2\")", m->format);
  if (!uuid_ok (m->volume_uuid) || !uuid_ok (m->snapshot_uuid))
    return bad (r, "volume-uuid or snapshot-uuid is not a UUID");
  if (!sc_snapshot_name_valid (m->snapshot_name))
    return bad (r, "snapshot-name is not a snapshot name");
  if (seen[M_BASE_UUID] != seen[M_PREV])
    return bad (r, "base-uuid and prev-manifest go together");
  if (seen[M_BASE_UUID] && (!uuid_ok (m->base_uuid) || !m->prev_manifest[0]))
    return bad (r, "base-uuid is not a UUID, or prev-manifest is empty");
  if (m->chunk_size == 0 || (m->chunk_size & (m->chunk_size - 1)))
    return bad (r, "chunk-size %" PRIu64 " is not a power of two",
                m->chunk_size);
  if (m->block_size < 4096 || m->block_size > (1u << 30) ||
      (m->block_size & (m->block_size - 1)))
    return bad (r, "block-size %" PRIu64 " is not a power of two from "
                "4096 to 1 GiB", m->block_size);
  if (m->nblocks != sc_manifest_blocks (m->volume_size, m->block_size))
    return bad (r, "block-crc32c has %" PRIu64 " CRCs; a volume of %"
                PRIu64 " bytes has %" PRIu64 " blocks of %" PRIu64,
                m->nblocks, m->volume_size,
                sc_manifest_blocks (m->volume_size, m->block_size),
                m->block_size);
  return 0;
}

int
sc_manifest_parse (const char *text, size_t len, struct sc_manifest *m,
                   char *err, size_t errlen)
{
  struct reader r = { text, text + len, err, errlen };
  bool seen[M_COUNT] = { false };
  int ret;

  memset (m, 0, sizeof *m);
  if (expect (&r, '{') < 0)
    goto fail;
  skip_ws (&r);
  if (r.p < r.end && *r.p == '}')
    r.p++;
  else
    for (;;) {
      char key[64];
      enum member k;

      if (read_string (&r, key, sizeof key) < 0)
        goto fail;              /* a member name past 63 bytes too */
      if (expect (&r, ':') < 0)
        goto fail;
      for (k = 0; k < M_COUNT; k++)
        if (strcmp (key, member_names[k]) == 0)
          break;
      if (k < M_COUNT) {
        if (seen[k]) {
          bad (&r, "%s given twice", member_names[k]);
          goto fail;
        }
        seen[k] = true;
        ret = read_member (&r, k, m);
        if (ret == -ENOMEM)
          goto nomem;
        if (ret < 0) {
          /* Say which member, keeping the reader's reason. */
          char why[200];
          snprintf (why, sizeof why, "%s", err && errlen ? err : "");
          bad (&r, "%s: %s", member_names[k], why);
          goto fail;
        }
      }
      else if (skip_value (&r, 1) < 0)
        goto fail;
      skip_ws (&r);
      if (r.p < r.end && *r.p == ',') {
        r.p++;
        continue;
      }
      if (expect (&r, '}') < 0)
        goto fail;
      break;
    }
  skip_ws (&r);
  if (r.p != r.end) {
    bad (&r, "text after the manifest's object");
    goto fail;
  }
  m->incremental = seen[M_BASE_UUID];
  if (check (&r, m, seen) < 0)
    goto fail;
  return 0;

nomem:
  if (err && errlen)
    snprintf (err, errlen, "%s", strerror (ENOMEM));
  sc_manifest_free (m);
  return -ENOMEM;
fail:
  sc_manifest_free (m);
  return -EINVAL;
}

int
sc_manifest_read (const char *path, struct sc_manifest *m, char *err,
                  size_t errlen)
{
  char why[300] = "";
  struct stat st;
  char *text;
  int fd, r;

  memset (m, 0, sizeof *m);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    r = -errno;
    snprintf (err, errlen, "cannot open manifest %s: %s", path,
              strerror (-r));
    return r;
  }
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) ||
      (uint64_t) st.st_size > SC_MANIFEST_MAX_BYTES) {
    close (fd);
    snprintf (err, errlen, "manifest %s: not a regular file of at most "
              "%u bytes", path, SC_MANIFEST_MAX_BYTES);
    return -EINVAL;
  }
  text = malloc ((size_t) st.st_size + 1);
  if (!text) {
    close (fd);
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  size_t n = 0;
  while (n < (size_t) st.st_size) {
    ssize_t k = read (fd, text + n, (size_t) st.st_size - n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      r = k < 0 ? -errno : -EIO;
      free (text);
      close (fd);
      snprintf (err, errlen, "cannot read manifest %s: %s", path,
                strerror (-r));
      return r;
    }
    n += (size_t) k;
  }
  close (fd);
  r = sc_manifest_parse (text, n, m, why, sizeof why);
  free (text);
  if (r < 0)
    snprintf (err, errlen, "manifest %s is damaged or not a shadowcopy "
              "manifest: %s", path, why);
  return r;
}

int
sc_manifest_print (const struct sc_manifest *m, FILE *f)
{
  struct sc_json j;

  sc_json_init (&j, f);
  sc_json_begin_object (&j);
  sc_json_member_uint (&j, "format-version", m->version);
  sc_json_member_string (&j, "format", m->format);
  sc_json_member_string (&j, "volume-uuid", m->volume_uuid);
  sc_json_member_string (&j, "snapshot-name", m->snapshot_name);
  sc_json_member_uint (&j, "snapshot-id", m->snapshot_id);
  sc_json_member_string (&j, "snapshot-uuid", m->snapshot_uuid);
  if (m->incremental) {
    sc_json_member_string (&j, "base-uuid", m->base_uuid);
    sc_json_member_string (&j, "prev-manifest", m->prev_manifest);
  }
  sc_json_member_uint (&j, "chunk-size", m->chunk_size);
  sc_json_member_uint (&j, "volume-size", m->volume_size);
  sc_json_member_string (&j, "start-time", m->start_time);
  sc_json_member_string (&j, "end-time", m->end_time);
  sc_json_member_uint (&j, "bytes-read", m->bytes_read);
  sc_json_member_uint (&j, "bytes-written", m->bytes_written);
  sc_json_member_uint (&j, "bytes-zeroed", m->bytes_zeroed);
  sc_json_member_uint (&j, "block-size", m->block_size);
  sc_json_key (&j, "block-crc32c");
  sc_json_begin_array (&j);
  for (uint64_t i = 0; i < m->nblocks; i++)
    sc_json_uint (&j, m->crc[i]);
  sc_json_end_array (&j);
  if (m->have_writers) {
    sc_json_key (&j, "writers");
    sc_json_begin_array (&j);
    for (size_t i = 0; i < m->nwriters; i++) {
      const struct sc_manifest_writer *w = &m->writers[i];
      sc_json_begin_object (&j);
      sc_json_member_string (&j, "name", w->name);
      sc_json_key (&j, "phases");
      sc_json_begin_array (&j);
      for (size_t k = 0; k < w->nphases; k++) {
        sc_json_begin_object (&j);
        sc_json_member_string (&j, "phase", w->phases[k].phase);
        sc_json_member_string (&j, "result", w->phases[k].result);
        sc_json_member_string (&j, "output", w->phases[k].output);
        sc_json_member_string (&j, "time", w->phases[k].time);
        sc_json_end_object (&j);
      }
      sc_json_end_array (&j);
      sc_json_end_object (&j);
    }
    sc_json_end_array (&j);
  }
  sc_json_end_object (&j);
  return ferror (f) ? -EIO : 0;
}

int
sc_manifest_write (const struct sc_manifest *m, const char *path,
                   struct stat *written, char *err, size_t errlen)
{
  char tmp[PATH_MAX + 16];
  FILE *f;
  int fd, r;

  if ((size_t) snprintf (tmp, sizeof tmp, "%s.partial", path) >= sizeof tmp) {
    snprintf (err, errlen, "%s: path too long", path);
    return -ENAMETOOLONG;
  }
  fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || !(f = fdopen (fd, "w"))) {
    r = -errno;
    if (fd >= 0)
      close (fd);
    snprintf (err, errlen, "cannot create %s: %s", tmp, strerror (-r));
    return r;
  }
  r = sc_manifest_print (m, f);
  if (r == 0 && (fflush (f) != 0 || fsync (fileno (f)) < 0))
    r = -errno;
  if (r == 0 && written && fstat (fileno (f), written) < 0)
    r = -errno;
  if (fclose (f) != 0 && r == 0)
    r = -errno;
  /* Never over another backup's manifest (a backup to the same TARGET
   * that finished first). */
  if (r == 0 && renameat2 (AT_FDCWD, tmp, AT_FDCWD, path,
                           RENAME_NOREPLACE) < 0)
    r = -errno;
  if (r == 0)
    r = sc_fsync_dir_of (path);
  if (r < 0) {
    snprintf (err, errlen, "cannot write manifest %s: %s", path,
              strerror (-r));
    unlink (tmp);
  }
  return r;
}

void
sc_manifest_free (struct sc_manifest *m)
{
  free (m->crc);
  m->crc = NULL;
  m->nblocks = 0;
  free (m->writers);
  m->writers = NULL;
  m->nwriters = 0;
  m->have_writers = false;
}
