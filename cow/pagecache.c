/* shadowcopy: a bounded cache of 4 KiB pages over files (pagecache.h).
 *
 * Frames hold the pages; a linear-probing hash table maps (file, page)
 * to a frame; the clock hand walks the frames for a victim (not pinned,
 * not referenced since the hand last passed).  Frame memory is one
 * anonymous mapping of the whole budget (reserved, not committed): a page
 * of it is touched when its frame is first used, so a small map costs
 * little however large the budget, and a full cache costs its budget, not
 * the double that 4 KiB-aligned heap blocks would (posix_memalign carves
 * 8 KiB for each). */
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
  uint8_t *mem;                 /* nframes pages, mapped */
  struct frame *frames;
  uint32_t nframes;             /* the budget */
  uint32_t hand;
  uint32_t *slots;              /* hash table of frame numbers */
  uint64_t mask;                /* slots - 1 */
  int fds[SC_PC_MAX_FILES];
  int nfiles;
  /* Per file, a bitmap of the 64 KiB regions known to have their disk
   * space: a page evicted and read again needs no new fallocate. */
  uint64_t *held[SC_PC_MAX_FILES];
  uint64_t held_words[SC_PC_MAX_FILES];
  int error;                    /* sticky, positive */
  uint32_t last;                /* the frame lookup found last, or NO_FRAME */
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
  void *mem = mmap (NULL, n * SC_PC_PAGE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (!pc->frames || !pc->slots || mem == MAP_FAILED) {
    if (mem != MAP_FAILED)
      munmap (mem, n * SC_PC_PAGE);
    free (pc->frames);
    free (pc->slots);
    free (pc);
    return -ENOMEM;
  }
  pc->mem = mem;
  memset (pc->slots, 0xff, slots * sizeof *pc->slots);
  pc->nframes = n;
  pc->mask = slots - 1;
  pc->last = NO_FRAME;
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
  for (int f = 0; f < pc->nfiles; f++) {
    close (pc->fds[f]);
    free (pc->held[f]);
  }
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
lookup (struct sc_pc *pc, uint64_t key)
{
  /* The frame found last: a put or a dirty follows its get, and a node
   * is often got again at once (no probe of the table, which is larger
   * than the CPU's caches). */
  uint32_t m = pc->last;
  if (m != NO_FRAME && pc->frames[m].used && pc->frames[m].key == key)
    return m;
  for (uint64_t i = hash_key (key) & pc->mask;; i = (i + 1) & pc->mask) {
    uint32_t f = pc->slots[i];
    if (f == NO_FRAME)
      return NO_FRAME;
    if (pc->frames[f].key == key) {
      pc->last = f;
      return f;
    }
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
static int give_space (struct sc_pc *pc, struct frame *fr);

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
    if (fr->dirty && !fr->backed) {
      int r = give_space (pc, fr);
      if (r == -ENOSPC || r == -EDQUOT)
        continue;               /* kept in memory until it has space */
      if (r < 0)
        return r;
      pc->st.unbacked--;
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

/* Pages get their disk space a region at a time: fewer syscalls, and a
 * file of large extents, which the filesystem frees quickly at close (one
 * extent a page makes the close of a large map take seconds). */
#define REGION_PAGES 16

static bool
region_held (const struct sc_pc *pc, int file, uint64_t region)
{
  return region / 64 < pc->held_words[file] &&
         (pc->held[file][region / 64] >> (region % 64) & 1);
}

static void
region_hold (struct sc_pc *pc, int file, uint64_t region)
{
  uint64_t w = pc->held_words[file];
  if (region / 64 >= w) {
    uint64_t nw = w ? w : 16;
    while (nw <= region / 64)
      nw *= 2;
    uint64_t *m = realloc (pc->held[file], nw * sizeof *m);
    if (!m)
      return;                   /* not remembered: asked again next time */
    memset (m + w, 0, (nw - w) * sizeof *m);
    pc->held[file] = m;
    pc->held_words[file] = nw;
  }
  pc->held[file][region / 64] |= UINT64_C (1) << (region % 64);
}

/* Give a page its disk space (a region at a time); -ENOSPC or -EDQUOT
 * when the filesystem has none, the sticky error for anything else. */
static int
give_space (struct sc_pc *pc, struct frame *fr)
{
  int file = fr->key >> PAGE_BITS;
  uint64_t page = fr->key & ((UINT64_C (1) << PAGE_BITS) - 1);
  uint64_t region = page / REGION_PAGES;
  int r = 0;
  if (!region_held (pc, file, region)) {
    r = sc_io_fallocate (pc->fds[file], 0,
                         region * REGION_PAGES * SC_PC_PAGE,
                         REGION_PAGES * SC_PC_PAGE);
    if (r == 0)
      region_hold (pc, file, region);
    else if (r == -ENOSPC || r == -EDQUOT)      /* the page alone, then */
      r = sc_io_fallocate (pc->fds[file], 0, page * SC_PC_PAGE,
                           SC_PC_PAGE);
  }
  if (r == -ENOSPC || r == -EDQUOT)
    return r;
  if (r < 0 && r != -EOPNOTSUPP)        /* no fallocate: write-back may fail */
    return fail (pc, -r);
  fr->backed = true;
  return 0;
}

/* A page that finds no disk space is still written to: it stays in memory,
 * dirty, until it gets its space (tried again each time the clock passes
 * it), so a full filesystem never fails a change, nor a write-back. */
static int
make_dirty (struct sc_pc *pc, struct frame *fr)
{
  if (!fr->backed && !fr->dirty) {     /* (dirty: it waits already) */
    int r = give_space (pc, fr);
    if (r == -ENOSPC || r == -EDQUOT)
      pc->st.unbacked++;
    else if (r < 0)
      return r;
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
