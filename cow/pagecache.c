/* shadowcopy: a bounded cache of 4 KiB pages over files (pagecache.h).
 *
 * Frames hold the pages; a linear-probing hash table maps (file, page)
 * to a frame; the clock hand walks the frames for a victim (not pinned,
 * not referenced since the hand last passed).  Frame memory is one
 * anonymous mapping of the whole budget, whose pages the kernel gives
 * when a frame is first used, so a small map costs little however large
 * the budget (and a page costs its 4 KiB: a 4 KiB-aligned allocation of
 * its own from malloc costs about twice that). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cow/io.h"
#include "cow/pagecache.h"

#define NO_FRAME UINT32_MAX

struct frame {
  uint64_t key;                 /* file << 56 | page */
  void *data;                   /* SC_PC_PAGE bytes, or NULL: never used */
  uint32_t pins;
  bool used;                    /* holds a page */
  bool ref;                     /* touched since the hand passed */
  bool dirty;
  bool backed;                  /* its disk space is allocated */
};

struct sc_pc {
  struct frame *frames;
  uint8_t *mem;                 /* nframes pages, mapped once */
  uint32_t nframes;             /* the budget */
  uint32_t hand;
  uint32_t *slots;              /* hash table of frame numbers */
  uint64_t mask;                /* slots - 1 */
  int fds[SC_PC_MAX_FILES];
  int nfiles;
  int error;                    /* sticky, positive */
  struct sc_pc_stats st;
};

#define PAGE_BITS 56

static inline uint64_t
key_of (int file, uint64_t page)
{
  return (uint64_t) file << PAGE_BITS | page;
}

static inline uint64_t
hash_key (uint64_t k)
{
  k ^= k >> 33;
  k *= UINT64_C (0xff51afd7ed558ccd);
  k ^= k >> 33;
  return k;
}

int
sc_pc_new (uint64_t budget, struct sc_pc **out)
{
  uint64_t n = budget / SC_PC_PAGE;
  if (n < SC_PC_MIN_PAGES)
    n = SC_PC_MIN_PAGES;
  if (n > UINT32_MAX / 4)
    return -EINVAL;
  uint64_t slots = 1;
  while (slots < 2 * n)
    slots <<= 1;
  struct sc_pc *pc = calloc (1, sizeof *pc);
  if (!pc)
    return -ENOMEM;
  pc->frames = calloc (n, sizeof *pc->frames);
  pc->slots = malloc (slots * sizeof *pc->slots);
  pc->mem = mmap (NULL, n * SC_PC_PAGE, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (!pc->frames || !pc->slots || pc->mem == MAP_FAILED) {
    if (pc->mem != MAP_FAILED)
      munmap (pc->mem, n * SC_PC_PAGE);
    free (pc->frames);
    free (pc->slots);
    free (pc);
    return -ENOMEM;
  }
  memset (pc->slots, 0xff, slots * sizeof *pc->slots);
  pc->nframes = n;
  pc->mask = slots - 1;
  pc->st.max_pages = n;
  *out = pc;
  return 0;
}

void
sc_pc_free (struct sc_pc *pc)
{
  if (!pc)
    return;
  munmap (pc->mem, (size_t) pc->nframes * SC_PC_PAGE);
  for (int f = 0; f < pc->nfiles; f++)
    close (pc->fds[f]);
  free (pc->frames);
  free (pc->slots);
  free (pc);
}

int
sc_pc_scratch_file (const char *dir)
{
  int fd = open (dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0)
    return fd;
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
    return -errno;
  char path[PATH_MAX];
  if (snprintf (path, sizeof path, "%s/.shadowcopy-map.XXXXXX", dir)
      >= (int) sizeof path)
    return -ENAMETOOLONG;
  fd = mkostemp (path, O_CLOEXEC);
  if (fd < 0)
    return -errno;
  unlink (path);
  return fd;
}

int
sc_pc_add_file (struct sc_pc *pc, int fd)
{
  if (pc->nfiles == SC_PC_MAX_FILES)
    return -EMFILE;
  pc->fds[pc->nfiles] = fd;
  return pc->nfiles++;
}

/* ---- the hash table: linear probing, deletion by backward shift ---- */

static uint32_t
lookup (const struct sc_pc *pc, uint64_t key)
{
  for (uint64_t i = hash_key (key) & pc->mask;; i = (i + 1) & pc->mask) {
    uint32_t f = pc->slots[i];
    if (f == NO_FRAME)
      return NO_FRAME;
    if (pc->frames[f].key == key)
      return f;
  }
}

static void
table_insert (struct sc_pc *pc, uint32_t frame)
{
  uint64_t i = hash_key (pc->frames[frame].key) & pc->mask;
  while (pc->slots[i] != NO_FRAME)
    i = (i + 1) & pc->mask;
  pc->slots[i] = frame;
}

static void
table_remove (struct sc_pc *pc, uint64_t key)
{
  uint64_t i = hash_key (key) & pc->mask;
  while (pc->frames[pc->slots[i]].key != key)
    i = (i + 1) & pc->mask;
  /* Shift back the entries of the run after i that may move. */
  for (uint64_t j = (i + 1) & pc->mask;; j = (j + 1) & pc->mask) {
    uint32_t f = pc->slots[j];
    if (f == NO_FRAME)
      break;
    uint64_t home = hash_key (pc->frames[f].key) & pc->mask;
    /* Move f to i if its home is not within (i, j]. */
    bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!between) {
      pc->slots[i] = f;
      i = j;
    }
  }
  pc->slots[i] = NO_FRAME;
}

/* ---- frames ---- */

static int
fail (struct sc_pc *pc, int err)
{
  if (!pc->error)
    pc->error = err;
  return -pc->error;
}

static int
write_back (struct sc_pc *pc, struct frame *fr)
{
  int file = fr->key >> PAGE_BITS;
  uint64_t page = fr->key & ((UINT64_C (1) << PAGE_BITS) - 1);
  int r = sc_io_pwrite (pc->fds[file], fr->data, SC_PC_PAGE,
                        page * SC_PC_PAGE, 0);
  if (r < 0)
    return fail (pc, -r);
  fr->dirty = false;
  pc->st.writebacks++;
  return 0;
}

/* A frame to load a page into: a free one, or the clock's victim, written
 * back first if dirty. */
static int
victim (struct sc_pc *pc, uint32_t *out)
{
  for (uint64_t steps = 0; steps < 2 * (uint64_t) pc->nframes + 1; steps++) {
    uint32_t i = pc->hand;
    pc->hand = (pc->hand + 1) % pc->nframes;
    struct frame *fr = &pc->frames[i];
    if (!fr->used) {
      *out = i;
      return 0;
    }
    if (fr->pins)
      continue;
    if (fr->ref) {
      fr->ref = false;
      continue;
    }
    if (fr->dirty) {
      int r = write_back (pc, fr);
      if (r < 0)
        return r;
    }
    table_remove (pc, fr->key);
    fr->used = false;
    pc->st.pages--;
    *out = i;
    return 0;
  }
  return -EBUSY;
}

/* A pinned page's frame: it is in the table (pinned pages stay). */
static struct frame *
frame_of (struct sc_pc *pc, int file, uint64_t page)
{
  uint32_t i = file >= 0 && file < pc->nfiles && !(page >> PAGE_BITS)
    ? lookup (pc, key_of (file, page)) : NO_FRAME;
  if (i == NO_FRAME || !pc->frames[i].pins)
    abort ();                   /* a caller's bug: never pinned */
  return &pc->frames[i];
}

static int
make_dirty (struct sc_pc *pc, struct frame *fr)
{
  if (!fr->backed) {
    int file = fr->key >> PAGE_BITS;
    uint64_t page = fr->key & ((UINT64_C (1) << PAGE_BITS) - 1);
    int r = sc_io_fallocate (pc->fds[file], 0, page * SC_PC_PAGE,
                             SC_PC_PAGE);
    if (r == -ENOSPC || r == -EDQUOT)
      return r;
    if (r < 0 && r != -EOPNOTSUPP)    /* no fallocate: write-back may fail */
      return fail (pc, -r);
    fr->backed = true;
  }
  fr->dirty = true;
  return 0;
}

int
sc_pc_get (struct sc_pc *pc, int file, uint64_t page, bool write,
           void **data)
{
  if (pc->error)
    return -pc->error;
  if (file < 0 || file >= pc->nfiles || page >> PAGE_BITS)
    return -EINVAL;
  uint64_t key = key_of (file, page);
  uint32_t i = lookup (pc, key);
  struct frame *fr;
  if (i != NO_FRAME) {
    fr = &pc->frames[i];
    pc->st.hits++;
  }
  else {
    int r = victim (pc, &i);
    if (r < 0)
      return r;
    fr = &pc->frames[i];
    if (!fr->data)
      fr->data = pc->mem + (size_t) i * SC_PC_PAGE;
    r = sc_io_pread (pc->fds[file], fr->data, SC_PC_PAGE, page * SC_PC_PAGE);
    if (r < 0)
      return fail (pc, -r);
    *fr = (struct frame) { .key = key, .data = fr->data, .used = true };
    table_insert (pc, i);
    pc->st.pages++;
    pc->st.misses++;
  }
  if (write) {
    int r = make_dirty (pc, fr);
    if (r < 0)
      return r;
  }
  fr->ref = true;
  fr->pins++;
  *data = fr->data;
  return 0;
}

int
sc_pc_dirty (struct sc_pc *pc, int file, uint64_t page)
{
  if (pc->error)
    return -pc->error;
  return make_dirty (pc, frame_of (pc, file, page));
}

void
sc_pc_put (struct sc_pc *pc, int file, uint64_t page)
{
  frame_of (pc, file, page)->pins--;
}

int
sc_pc_error (const struct sc_pc *pc)
{
  return pc->error;
}

void
sc_pc_stats (const struct sc_pc *pc, struct sc_pc_stats *out)
{
  *out = pc->st;
}
