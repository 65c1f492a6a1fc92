/* shadowcopy: the copy index, a B+tree of copies in a scratch file.
 *
 * Notes on the design
 *
 * Keys are (chunk, epoch), chunk first: a chunk's copies sit side by
 * side, oldest first, and a pass over the map (a checkpoint, garbage
 * collection) reads the leaves in order.  A leaf holds 170 copies, an
 * inner node 255 children: ten million copies take 60,000 to 120,000
 * leaves (230 to 460 MiB of scratch file) under three levels.
 *
 * An inner node's key i is the smallest key child i may hold: every key
 * in child i is >= key i and < key i+1 (key 0 is never compared, so a
 * key smaller than any seen goes to the leftmost leaf).  Removals leave
 * the keys as they are, so the rule holds with no rebalancing, and an
 * exact key is always in the leaf one descent finds.  Nothing merges,
 * but a leaf emptied by removals leaves the tree (its neighbours are
 * linked both ways), and so does an inner node left with no child; their
 * pages serve the next new nodes.  So no lookup walks empty leaves: a
 * chunk copied in every epoch whose old copies were collected costs the
 * leaves of the copies it has, not of those it had.  A search for a
 * chunk's copies that runs off a leaf descends again from the next
 * leaf's key.
 *
 * A full leaf splits in half, except when copies come in ascending order
 * (this one after the last one added) and the new one goes at its end:
 * then the new leaf takes only the new one.  Copies made in chunk order
 * (a sequential write, the replay of a checkpoint, which lists chunks in
 * order) so fill leaves to the brim, and copies made in any other order
 * fill them at least half; inner nodes split the same way.
 *
 * Pages are pinned only while a function reads or writes them (at most
 * two at once: a node and its new sibling), never across a caller's
 * callback, so the smallest cache serves any tree. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "cow/index.h"
#include "cow/pagecache.h"

#define NODE_MAGIC 0x4d43u       /* "CM" */
#define MAX_HEIGHT 12

struct node {
  uint16_t magic;
  uint16_t level;               /* 0: a leaf */
  uint16_t n;                   /* entries in use */
  uint16_t unused;
  uint32_t next;                /* a leaf's right neighbour, 0 at the end */
  uint32_t prev;                /* its left neighbour, 0 at the start */
};

struct leaf_ent {
  uint64_t chunk;
  uint64_t slot;
  uint32_t epoch;
  uint32_t crc;
};

struct inner_ent {
  uint64_t chunk;
  uint32_t epoch;
  uint32_t child;               /* page */
};

#define LEAF_MAX ((SC_PC_PAGE - sizeof (struct node)) / sizeof (struct leaf_ent))
#define INNER_MAX ((SC_PC_PAGE - sizeof (struct node)) / sizeof (struct inner_ent))
_Static_assert (sizeof (struct node) == 16, "node header size");
_Static_assert (LEAF_MAX == 170 && INNER_MAX == 255, "node fan-out");

/* A copy of a pass (sc_index_filter_slice), with its chunk. */
struct sc_index_hit {
  uint64_t chunk;
  struct sc_copy c;
  bool drop;                    /* turned down by the pass's `keep` */
};

struct key {
  uint64_t chunk;
  uint32_t epoch;
};

static inline int
key_cmp (uint64_t ca, uint32_t ea, uint64_t cb, uint32_t eb)
{
  if (ca != cb)
    return ca < cb ? -1 : 1;
  return ea < eb ? -1 : ea > eb;
}

static inline struct leaf_ent *
leaf_ents (struct node *nd)
{
  return (struct leaf_ent *) (nd + 1);
}

static inline struct inner_ent *
inner_ents (struct node *nd)
{
  return (struct inner_ent *) (nd + 1);
}

static inline struct sc_copy
copy_of (const struct leaf_ent *e)
{
  return (struct sc_copy) { .slot = e->slot, .epoch = e->epoch,
                            .crc = e->crc };
}

/* ---- pages -------------------------------------------------------------- */

static int
fail (struct sc_index *ix, int err)
{
  if (!ix->error)
    ix->error = -err;
  return -ix->error;
}

/* Node `page`, pinned, checked to be a node of `level`. */
static int
node_get (struct sc_index *ix, uint32_t page, unsigned level,
          struct node **out)
{
  if (ix->error)
    return -ix->error;
  void *p;
  int r = sc_pc_get (ix->pc, ix->file, page, false, &p);
  if (r < 0)
    return fail (ix, r);
  struct node *nd = p;
  if (nd->magic != NODE_MAGIC || nd->level != level ||
      nd->n > (level ? INNER_MAX : LEAF_MAX)) {
    sc_pc_put (ix->pc, ix->file, page);
    return fail (ix, -EIO);     /* not what the tree wrote there */
  }
  *out = nd;
  return 0;
}

static inline void
node_put (struct sc_index *ix, uint32_t page)
{
  sc_pc_put (ix->pc, ix->file, page);
}

/* About to change pinned node `page`; on failure it is unpinned. */
static int
node_dirty (struct sc_index *ix, uint32_t page)
{
  int r = sc_pc_dirty (ix->pc, ix->file, page);
  if (r < 0) {
    node_put (ix, page);
    return fail (ix, r);
  }
  return 0;
}

/* A new empty node of `level`, pinned and dirty. */
static int
node_new (struct sc_index *ix, unsigned level, uint32_t *page,
          struct node **out)
{
  if (ix->error)
    return -ix->error;
  if (!ix->nfree && ix->pages == UINT32_MAX)
    return fail (ix, -EFBIG);
  uint32_t pg = ix->nfree ? ix->free_pages[ix->nfree - 1] : ix->pages + 1;
  void *p;
  int r = sc_pc_get (ix->pc, ix->file, pg, true, &p);
  if (r < 0)
    return fail (ix, r);
  if (ix->nfree)
    ix->nfree--;
  else
    ix->pages = pg;
  memset (p, 0, SC_PC_PAGE);
  struct node *nd = p;
  nd->magic = NODE_MAGIC;
  nd->level = (uint16_t) level;
  *page = pg;
  *out = nd;
  return 0;
}

/* A node no longer in the tree: its page goes to the next node_new. */
static int
node_free (struct sc_index *ix, uint32_t page)
{
  if (ix->nfree == ix->free_cap) {
    size_t cap = ix->free_cap ? 2 * ix->free_cap : 64;
    uint32_t *f = realloc (ix->free_pages, cap * sizeof *f);
    if (!f)
      return fail (ix, -ENOMEM);        /* the tree is unlinked already */
    ix->free_pages = f;
    ix->free_cap = cap;
  }
  ix->free_pages[ix->nfree++] = page;
  return 0;
}

/* ---- searching ---------------------------------------------------------- */

/* The child of an inner node whose keys may hold (chunk, epoch): the last
 * i with key i <= the key, or 0. */
static unsigned
inner_find (struct node *nd, uint64_t chunk, uint32_t epoch)
{
  const struct inner_ent *e = inner_ents (nd);
  unsigned lo = 1, hi = nd->n;
  while (lo < hi) {
    unsigned mid = lo + (hi - lo) / 2;
    if (key_cmp (e[mid].chunk, e[mid].epoch, chunk, epoch) <= 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo - 1;
}

/* The first entry of a leaf at or after (chunk, epoch), or n.  Chunks
 * are mostly spread evenly over a leaf (copies of runs of chunks), so
 * the search starts where the chunk would sit if they were, and gallops
 * from there: one or two cache lines of the page instead of the eight a
 * plain binary search over 4 KiB touches. */
static unsigned
leaf_find (struct node *nd, uint64_t chunk, uint32_t epoch)
{
  const struct leaf_ent *e = leaf_ents (nd);
  unsigned n = nd->n, lo = 0, hi = n;
  if (n > 8) {
    uint64_t first = e[0].chunk, last = e[n - 1].chunk;
    unsigned g = 0;
    if (chunk > last)
      return n;
    if (chunk > first && last > first)
      g = (unsigned) ((unsigned __int128) (chunk - first) * (n - 1)
                      / (last - first));
    /* Bracket the answer around g: [lo, hi) holds it. */
    unsigned step = 1;
    if (key_cmp (e[g].chunk, e[g].epoch, chunk, epoch) < 0) {
      lo = g + 1;
      while (lo + step < n &&
             key_cmp (e[lo + step - 1].chunk, e[lo + step - 1].epoch,
                      chunk, epoch) < 0) {
        lo += step;
        step *= 2;
      }
      hi = lo + step < n ? lo + step : n;
    }
    else {
      hi = g;
      while (hi >= step &&
             key_cmp (e[hi - step].chunk, e[hi - step].epoch, chunk,
                      epoch) >= 0) {
        hi -= step;
        step *= 2;
      }
      lo = hi >= step ? hi - step + 1 : 0;
    }
  }
  while (lo < hi) {
    unsigned mid = lo + (hi - lo) / 2;
    if (key_cmp (e[mid].chunk, e[mid].epoch, chunk, epoch) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* The way down to the leaf that holds (chunk, epoch) if anything does:
 * the node and child index at each inner level, the leaf at level 0,
 * and the smallest key of the leaves after it (`has_bound` false: none
 * follow). */
struct path {
  uint32_t page[MAX_HEIGHT + 1];
  unsigned idx[MAX_HEIGHT + 1];
  bool has_bound;
  struct key bound;
};

static int
descend (struct sc_index *ix, uint64_t chunk, uint32_t epoch, struct path *p)
{
  uint32_t page = ix->root;
  p->has_bound = false;
  for (unsigned level = ix->height; level > 0; level--) {
    struct node *nd;
    int r = node_get (ix, page, level, &nd);
    if (r < 0)
      return r;
    if (nd->n == 0) {
      node_put (ix, page);
      return fail (ix, -EIO);
    }
    unsigned i = inner_find (nd, chunk, epoch);
    const struct inner_ent *e = inner_ents (nd);
    if (i + 1 < nd->n) {        /* the lowest level's bound is the tightest */
      p->has_bound = true;
      p->bound = (struct key) { e[i + 1].chunk, e[i + 1].epoch };
    }
    p->page[level] = page;
    p->idx[level] = i;
    uint32_t child = e[i].child;
    node_put (ix, page);
    page = child;
  }
  p->page[0] = page;
  return 0;
}

/* The copies of `chunk` with epochs in [from, to], oldest first: the
 * first of them, or with `newest` the last.  1, 0 (none), or -errno. */
static int
chunk_pick (struct sc_index *ix, uint64_t chunk, uint32_t from, uint32_t to,
            bool newest, struct sc_copy *out)
{
  if (ix->error)
    return -ix->error;
  struct key at = { chunk, from };
  int found = 0;
  for (;;) {
    struct path p;
    int r = descend (ix, at.chunk, at.epoch, &p);
    struct node *nd;
    if (r == 0)
      r = node_get (ix, p.page[0], 0, &nd);
    if (r < 0)
      return r;
    const struct leaf_ent *e = leaf_ents (nd);
    for (unsigned i = leaf_find (nd, at.chunk, at.epoch); i < nd->n; i++) {
      if (e[i].chunk != chunk || e[i].epoch > to) {
        node_put (ix, p.page[0]);
        return found;
      }
      *out = copy_of (&e[i]);
      found = 1;
      if (!newest) {
        node_put (ix, p.page[0]);
        return 1;
      }
    }
    node_put (ix, p.page[0]);
    /* The leaf ended: the chunk may go on in the next one. */
    if (!p.has_bound || p.bound.chunk != chunk || p.bound.epoch > to)
      return found;
    at = p.bound;
  }
}

int
sc_index_last (struct sc_index *ix, uint64_t chunk, struct sc_copy *out)
{
  return chunk_pick (ix, chunk, 0, UINT32_MAX, true, out);
}

int
sc_index_after (struct sc_index *ix, uint64_t chunk, uint32_t epoch,
                struct sc_copy *out)
{
  if (epoch == UINT32_MAX)
    return ix->error ? -ix->error : 0;
  return chunk_pick (ix, chunk, epoch + 1, UINT32_MAX, false, out);
}

int
sc_index_before (struct sc_index *ix, uint64_t chunk, uint32_t epoch,
                 struct sc_copy *out)
{
  if (epoch == 0)
    return ix->error ? -ix->error : 0;
  return chunk_pick (ix, chunk, 0, epoch - 1, true, out);
}

int
sc_index_find (struct sc_index *ix, uint64_t chunk, uint32_t epoch,
               struct sc_copy *out)
{
  return chunk_pick (ix, chunk, epoch, epoch, false, out);
}

/* ---- changing ----------------------------------------------------------- */

int
sc_index_init (struct sc_index *ix, struct sc_pc *pc, int fd)
{
  memset (ix, 0, sizeof *ix);
  ix->pc = pc;
  int file = sc_pc_add_file (pc, fd);
  if (file < 0) {
    close (fd);
    return file;
  }
  ix->file = file;
  struct node *nd;
  int r = node_new (ix, 0, &ix->root, &nd);
  if (r < 0)
    return r;
  node_put (ix, ix->root);
  return 0;
}

void
sc_index_free (struct sc_index *ix)
{
  free (ix->buf);
  free (ix->free_pages);
  memset (ix, 0, sizeof *ix);
}

int
sc_index_error (const struct sc_index *ix)
{
  return ix->error;
}

/* The leaf that holds (chunk, epoch) if anything does, pinned; *pos is
 * where the key is or would go. */
static int
leaf_of (struct sc_index *ix, uint64_t chunk, uint32_t epoch, struct path *p,
         struct node **leaf, unsigned *pos)
{
  int r = descend (ix, chunk, epoch, p);
  if (r == 0)
    r = node_get (ix, p->page[0], 0, leaf);
  if (r == 0)
    *pos = leaf_find (*leaf, chunk, epoch);
  return r;
}

static inline bool
leaf_has (struct node *nd, unsigned pos, uint64_t chunk, uint32_t epoch)
{
  const struct leaf_ent *e = leaf_ents (nd);
  return pos < nd->n && e[pos].chunk == chunk && e[pos].epoch == epoch;
}

/* Point leaf `page`'s next (or with `next` false, its prev) at `to`. */
static int
leaf_link (struct sc_index *ix, uint32_t page, bool next, uint32_t to)
{
  struct node *nd;
  int r = node_get (ix, page, 0, &nd);
  if (r == 0)
    r = node_dirty (ix, page);
  if (r < 0)
    return r;
  if (next)
    nd->next = to;
  else
    nd->prev = to;
  node_put (ix, page);
  return 0;
}

/* Take child p->idx[level] out of inner node p->page[level]: a node left
 * with no child goes too, and a root left with one gives way to it. */
static int
inner_remove (struct sc_index *ix, struct path *p, unsigned level)
{
  uint32_t page = p->page[level];
  struct node *nd;
  int r = node_get (ix, page, level, &nd);
  if (r == 0)
    r = node_dirty (ix, page);
  if (r < 0)
    return r;
  struct inner_ent *e = inner_ents (nd);
  unsigned i = p->idx[level];
  memmove (&e[i], &e[i + 1], (nd->n - i - 1) * sizeof *e);
  nd->n--;
  unsigned n = nd->n;
  uint32_t only = e[0].child;
  node_put (ix, page);
  if (n == 0) {
    if (level == ix->height)
      return fail (ix, -EIO);   /* the last leaf is never taken out */
    r = node_free (ix, page);
    return r < 0 ? r : inner_remove (ix, p, level + 1);
  }
  if (n == 1 && level == ix->height) {
    ix->root = only;
    ix->height--;
    return node_free (ix, page);
  }
  return 0;
}

/* Leaf nd (p->page[0], pinned) has no copy left: unless it is the only
 * leaf, it leaves the tree (so no lookup ever walks empty leaves).
 * Unpins it. */
static int
leaf_drop_if_empty (struct sc_index *ix, struct path *p, struct node *nd)
{
  uint32_t prev = nd->prev, next = nd->next;
  bool drop = nd->n == 0 && ix->height > 0 && (prev || next);
  node_put (ix, p->page[0]);
  if (!drop)
    return 0;
  int r = 0;
  if (prev)
    r = leaf_link (ix, prev, true, next);
  if (r == 0 && next)
    r = leaf_link (ix, next, false, prev);
  if (r == 0)
    r = node_free (ix, p->page[0]);
  return r < 0 ? r : inner_remove (ix, p, 1);
}

/* The copy (chunk, epoch), its leaf pinned and dirty, about to change:
 * 1, 0 if there is none (nothing pinned), or -errno. */
static int
copy_to_change (struct sc_index *ix, uint64_t chunk, uint32_t epoch,
                struct path *p, struct node **leaf, unsigned *pos)
{
  int r = leaf_of (ix, chunk, epoch, p, leaf, pos);
  if (r < 0)
    return r;
  if (!leaf_has (*leaf, *pos, chunk, epoch)) {
    node_put (ix, p->page[0]);
    return 0;
  }
  r = node_dirty (ix, p->page[0]);
  return r < 0 ? r : 1;
}

int
sc_index_set_slot (struct sc_index *ix, uint64_t chunk, uint32_t epoch,
                   uint64_t slot, uint32_t crc)
{
  struct path p;
  struct node *nd;
  unsigned pos;
  int r = copy_to_change (ix, chunk, epoch, &p, &nd, &pos);
  if (r <= 0)
    return r;
  leaf_ents (nd)[pos].slot = slot;
  leaf_ents (nd)[pos].crc = crc;
  node_put (ix, p.page[0]);
  return 1;
}

int
sc_index_remove (struct sc_index *ix, uint64_t chunk, uint32_t epoch)
{
  struct path p;
  struct node *nd;
  unsigned pos;
  int r = copy_to_change (ix, chunk, epoch, &p, &nd, &pos);
  if (r <= 0)
    return r;
  struct leaf_ent *e = leaf_ents (nd);
  memmove (&e[pos], &e[pos + 1], (nd->n - pos - 1) * sizeof *e);
  nd->n--;
  /* Does the chunk keep a copy?  Its neighbours here tell, unless the
   * copy was at the leaf's edge. */
  int others = (pos > 0 && e[pos - 1].chunk == chunk) ||
               (pos < nd->n && e[pos].chunk == chunk);
  bool edge = pos == 0 || pos == nd->n;
  ix->copies--;
  if ((r = leaf_drop_if_empty (ix, &p, nd)) < 0)
    return r;
  if (!others && edge) {
    struct sc_copy c;
    others = chunk_pick (ix, chunk, 0, UINT32_MAX, false, &c);
    if (others < 0)
      return others;
  }
  if (!others)
    ix->chunks--;
  return 1;
}

/* Put entry `ins` (`size` bytes) at pos of node nd, which has room. */
static void
insert_at (struct node *nd, size_t size, unsigned pos, const void *ins)
{
  uint8_t *e = (uint8_t *) (nd + 1);
  memmove (e + (pos + 1) * size, e + pos * size, (nd->n - pos) * size);
  memcpy (e + pos * size, ins, size);
  nd->n++;
}

/* Split the full node nd (`max` entries of `size` bytes) into itself and
 * its new sibling sib, then put `ins` at pos in whichever it belongs to.
 * Copies made in ascending order (`ascending`: this one comes after the
 * last one added) that go at the end keep the full node as it is, the
 * sibling taking only the new one; otherwise each keeps half. */
static void
split_entries (struct node *nd, struct node *sib, unsigned max, size_t size,
               unsigned pos, const void *ins, bool ascending)
{
  unsigned keep = pos == nd->n && ascending ? nd->n : nd->n / 2;
  memcpy (sib + 1, (uint8_t *) (nd + 1) + keep * size, (nd->n - keep) * size);
  sib->n = (uint16_t) (nd->n - keep);
  nd->n = (uint16_t) keep;
  if (pos <= keep && keep < max)
    insert_at (nd, size, pos, ins);
  else
    insert_at (sib, size, pos - keep, ins);
}

/* Put (key, child) into the inner node at `level` of path p, after the
 * child the path went through; splits climb, and a split root makes a
 * new root. */
static int
inner_insert (struct sc_index *ix, struct path *p, unsigned level,
              struct key k, uint32_t child, bool ascending)
{
  struct node *nd, *sib;
  uint32_t page, sib_page;
  if (level > ix->height) {
    if (ix->height == MAX_HEIGHT)
      return fail (ix, -EFBIG);
    int r = node_new (ix, level, &page, &nd);
    if (r < 0)
      return r;
    struct inner_ent *e = inner_ents (nd);
    e[0] = (struct inner_ent) { 0, 0, ix->root };
    e[1] = (struct inner_ent) { k.chunk, k.epoch, child };
    nd->n = 2;
    node_put (ix, page);
    ix->root = page;
    ix->height = level;
    return 0;
  }
  page = p->page[level];
  unsigned pos = p->idx[level] + 1;
  int r = node_get (ix, page, level, &nd);
  if (r == 0)
    r = node_dirty (ix, page);
  if (r < 0)
    return r;
  struct inner_ent ins = { k.chunk, k.epoch, child };
  if (nd->n < INNER_MAX) {
    insert_at (nd, sizeof ins, pos, &ins);
    node_put (ix, page);
    return 0;
  }
  if ((r = node_new (ix, level, &sib_page, &sib)) < 0) {
    node_put (ix, page);
    return r;
  }
  split_entries (nd, sib, INNER_MAX, sizeof ins, pos, &ins, ascending);
  struct key up = { inner_ents (sib)[0].chunk, inner_ents (sib)[0].epoch };
  node_put (ix, sib_page);
  node_put (ix, page);
  return inner_insert (ix, p, level + 1, up, sib_page, ascending);
}

/* Insert into the full leaf nd (page p->page[0], pinned and dirty) at pos;
 * unpins it. */
static int
leaf_split (struct sc_index *ix, struct path *p, struct node *nd,
            unsigned pos, struct leaf_ent ins, bool ascending)
{
  struct node *sib;
  uint32_t page = p->page[0], sib_page;
  int r = node_new (ix, 0, &sib_page, &sib);
  if (r < 0) {
    node_put (ix, page);
    return r;
  }
  split_entries (nd, sib, LEAF_MAX, sizeof ins, pos, &ins, ascending);
  sib->next = nd->next;
  sib->prev = page;
  nd->next = sib_page;
  struct key up = { leaf_ents (sib)[0].chunk, leaf_ents (sib)[0].epoch };
  uint32_t after = sib->next;
  node_put (ix, sib_page);
  node_put (ix, page);
  if (after && (r = leaf_link (ix, after, false, sib_page)) < 0)
    return r;
  return inner_insert (ix, p, 1, up, sib_page, ascending);
}

/* Had `chunk` a copy other than the one of `epoch`, just added? */
static int
had_others (struct sc_index *ix, uint64_t chunk, uint32_t epoch)
{
  struct sc_copy first, last;
  int r = chunk_pick (ix, chunk, 0, UINT32_MAX, false, &first);
  if (r > 0)
    r = chunk_pick (ix, chunk, 0, UINT32_MAX, true, &last);
  if (r <= 0)
    return r < 0 ? r : fail (ix, -EIO);     /* it was just added */
  return first.epoch != epoch || last.epoch != epoch;
}

int
sc_index_add (struct sc_index *ix, uint64_t chunk, struct sc_copy copy)
{
  if (copy.epoch == UINT32_MAX)
    return -EINVAL;
  struct path p;
  struct node *nd;
  unsigned pos;
  int r = leaf_of (ix, chunk, copy.epoch, &p, &nd, &pos);
  if (r < 0)
    return r;
  if (leaf_has (nd, pos, chunk, copy.epoch)) {
    node_put (ix, p.page[0]);
    return -EEXIST;
  }
  if ((r = node_dirty (ix, p.page[0])) < 0)
    return r;
  /* Does the chunk have copies already?  The neighbours tell, unless the
   * copy goes at the leaf's edge: then ask after. */
  struct leaf_ent *e = leaf_ents (nd);
  int had = (pos > 0 && e[pos - 1].chunk == chunk) ||
            (pos < nd->n && e[pos].chunk == chunk);
  if (!had && (pos == 0 || pos == nd->n))
    had = -1;
  struct leaf_ent ins = { .chunk = chunk, .slot = copy.slot,
                          .epoch = copy.epoch, .crc = copy.crc };
  bool ascending = key_cmp (chunk, copy.epoch, ix->last_chunk,
                            ix->last_epoch) > 0;
  ix->last_chunk = chunk;
  ix->last_epoch = copy.epoch;
  if (nd->n < LEAF_MAX) {
    insert_at (nd, sizeof ins, pos, &ins);
    node_put (ix, p.page[0]);
  }
  else if ((r = leaf_split (ix, &p, nd, pos, ins, ascending)) < 0)
    return r;
  ix->copies++;
  if (had < 0 && (had = had_others (ix, chunk, copy.epoch)) < 0)
    return had;
  ix->chunks += !had;
  return 0;
}

/* ---- passes ------------------------------------------------------------- */

static int
buf_push (struct sc_index *ix, size_t n, const struct leaf_ent *e)
{
  if (n == ix->buf_cap) {
    size_t cap = ix->buf_cap ? 2 * ix->buf_cap : LEAF_MAX * 2;
    struct sc_index_hit *b = realloc (ix->buf, cap * sizeof *b);
    if (!b)
      return -ENOMEM;
    ix->buf = b;
    ix->buf_cap = cap;
  }
  ix->buf[n] = (struct sc_index_hit) { e->chunk, copy_of (e), false };
  return 0;
}

/* Into ix->buf, the copies from the first at or after chunk `from` to the
 * end of its leaf, and on into the next leaves until that last chunk
 * ends: whole chunks.  Their number, or -errno. */
static ssize_t
gather (struct sc_index *ix, uint64_t from)
{
  struct path p;
  int r = descend (ix, from, 0, &p);
  if (r < 0)
    return r;
  uint32_t page = p.page[0];
  size_t n = 0;
  bool first = true;
  while (page) {
    struct node *nd;
    if ((r = node_get (ix, page, 0, &nd)) < 0)
      return r;
    const struct leaf_ent *e = leaf_ents (nd);
    unsigned i = first ? leaf_find (nd, from, 0) : 0;
    bool tail = n > 0;          /* only the rest of the last chunk now */
    first = false;
    for (; i < nd->n; i++) {
      if (tail && e[i].chunk != ix->buf[n - 1].chunk)
        break;
      if ((r = buf_push (ix, n, &e[i])) < 0) {
        node_put (ix, page);
        return r;
      }
      n++;
    }
    bool ended = i < nd->n;     /* at another chunk */
    uint32_t next = nd->next;
    node_put (ix, page);
    if (ended)
      break;
    page = next;
  }
  return (ssize_t) n;
}

/* Visit the copies ix->buf[at, at + k), all of one chunk; then remove
 * those `keep` turned down. */
static int
visit_chunk (struct sc_index *ix, size_t at, size_t k,
             sc_index_visit_fn keep, void *opaque)
{
  struct sc_index_hit *h = ix->buf + at;
  uint32_t prev = 0;
  for (size_t j = 0; j < k; j++) {
    struct sc_copy c = h[j].c;
    h[j].drop = !keep (opaque, h[j].chunk, prev, &c);
    prev = h[j].c.epoch;
  }
  for (size_t j = 0; j < k; j++) {
    int r = h[j].drop ? sc_index_remove (ix, h[j].chunk, h[j].c.epoch) : 0;
    if (r < 0)
      return r;
  }
  return ix->error ? -ix->error : 0;
}

int
sc_index_filter_slice (struct sc_index *ix, uint64_t *cursor, uint64_t budget,
                       sc_index_visit_fn keep, void *opaque)
{
  if (ix->error)
    return -ix->error;
  uint64_t from = *cursor, seen = 0;
  for (;;) {
    ssize_t n = gather (ix, from);
    if (n < 0)
      return (int) n;
    if (n == 0) {
      *cursor = 0;
      return 1;
    }
    for (size_t a = 0, b; a < (size_t) n; a = b) {
      for (b = a + 1; b < (size_t) n && ix->buf[b].chunk == ix->buf[a].chunk;
           b++)
        ;
      int r = visit_chunk (ix, a, b - a, keep, opaque);
      if (r < 0)
        return r;
      seen += b - a;
      from = ix->buf[a].chunk + 1;
      if (seen >= budget) {
        *cursor = from;
        return 0;
      }
    }
  }
}

int
sc_index_filter (struct sc_index *ix, sc_index_visit_fn keep, void *opaque)
{
  uint64_t cursor = 0;
  int r;
  while ((r = sc_index_filter_slice (ix, &cursor, UINT64_MAX, keep,
                                     opaque)) == 0)
    ;
  return r < 0 ? r : 0;
}
