/* shadowcopy: CRC32C, table driven, or SSE4.2 where the CPU has it.
 *
 * Notes on the design
 *
 * The SSE4.2 instruction takes 8 bytes a cycle but has a latency of
 * three: one chain of it runs at a third of its speed.  Long buffers are
 * therefore cut into three lanes summed as three independent chains, the
 * second and third from a register of 0, then joined: the register after
 * A then B (B of n bytes) is the register after A moved over n zero
 * bytes, xor B's from 0 (the CRC register is linear in its start).
 * Moving a register over n zero bytes is a linear map of its 32 bits,
 * kept as four tables of 256 (one per byte of the register), built once
 * for each lane size from the map of one zero byte by squaring. */
#include <config.h>

#include <pthread.h>
#include <stdbool.h>

#include "cow/crc32c.h"

#define POLY 0x82f63b78u        /* Castagnoli, reflected */

static uint32_t table[8][256];
static bool have_sse42;

/* Lane sizes of the three-stream sum: LONG, then SHORT for the rest. */
#define LONG 8192
#define SHORT 256
/* The register moved over LONG and SHORT zero bytes. */
static uint32_t zeros_long[4][256], zeros_short[4][256];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* A linear map of 32 bits as its columns: the images of 1 << k. */
static uint32_t
gf2_apply (const uint32_t m[32], uint32_t v)
{
  uint32_t r = 0;
  for (int k = 0; v; k++, v >>= 1)
    if (v & 1)
      r ^= m[k];
  return r;
}

/* t: the register moved over n zero bytes (n a power of two), one
 * table per byte of the register.  Uses table[0]. */
static void
zeros_tables (uint32_t t[4][256], size_t n)
{
  uint32_t m[32], sq[32];

  for (int k = 0; k < 32; k++) {        /* one zero byte */
    uint32_t c = 1u << k;
    m[k] = (c >> 8) ^ table[0][c & 0xff];
  }
  for (size_t have = 1; have < n; have *= 2) {
    for (int k = 0; k < 32; k++)
      sq[k] = gf2_apply (m, m[k]);
    for (int k = 0; k < 32; k++)
      m[k] = sq[k];
  }
  for (int j = 0; j < 4; j++)
    for (uint32_t v = 0; v < 256; v++)
      t[j][v] = gf2_apply (m, v << (8 * j));
}

static void
crc32c_init (void)
{
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (POLY & -(c & 1));
    table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++)
      table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
#if defined(__x86_64__)
  have_sse42 = __builtin_cpu_supports ("sse4.2");
#endif
  zeros_tables (zeros_long, LONG);
  zeros_tables (zeros_short, SHORT);
}

/* Slicing by 8: eight table look-ups per 8 bytes. */
static uint32_t
crc32c_soft (uint32_t c, const uint8_t *p, size_t len)
{
  while (len && ((uintptr_t) p & 7)) {
    c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
    len--;
  }
  while (len >= 8) {
    uint32_t lo = c ^ ((uint32_t) p[0] | (uint32_t) p[1] << 8 |
                       (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24);
    c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
        table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
        table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
    p += 8;
    len -= 8;
  }
  while (len--)
    c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
  return c;
}

#if defined(__x86_64__)
static inline uint32_t
shift (const uint32_t t[4][256], uint32_t c)
{
  return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff]
    ^ t[3][c >> 24];
}

/* Three lanes of n bytes from p (8-byte aligned) onto c. */
__attribute__((target ("sse4.2"), always_inline))
static inline uint64_t
three_lanes (uint64_t c, const uint8_t *p, size_t n,
             const uint32_t t[4][256])
{
  uint64_t c1 = 0, c2 = 0, v0, v1, v2;
  for (size_t i = 0; i < n; i += 8) {
    __builtin_memcpy (&v0, p + i, 8);
    __builtin_memcpy (&v1, p + n + i, 8);
    __builtin_memcpy (&v2, p + 2 * n + i, 8);
    c = __builtin_ia32_crc32di (c, v0);
    c1 = __builtin_ia32_crc32di (c1, v1);
    c2 = __builtin_ia32_crc32di (c2, v2);
  }
  c = shift (t, (uint32_t) c) ^ (uint32_t) c1;
  return shift (t, (uint32_t) c) ^ (uint32_t) c2;
}

__attribute__((target ("sse4.2")))
static uint32_t
crc32c_sse42 (uint32_t c, const uint8_t *p, size_t len)
{
  uint64_t c64 = c;
  while (len && ((uintptr_t) p & 7)) {
    c64 = __builtin_ia32_crc32qi ((uint32_t) c64, *p++);
    len--;
  }
  for (; len >= 3 * LONG; p += 3 * LONG, len -= 3 * LONG)
    c64 = three_lanes (c64, p, LONG, zeros_long);
  for (; len >= 3 * SHORT; p += 3 * SHORT, len -= 3 * SHORT)
    c64 = three_lanes (c64, p, SHORT, zeros_short);
  while (len >= 8) {
    uint64_t v;
    __builtin_memcpy (&v, p, 8);
    c64 = __builtin_ia32_crc32di (c64, v);
    p += 8;
    len -= 8;
  }
  while (len--)
    c64 = __builtin_ia32_crc32qi ((uint32_t) c64, *p++);
  return (uint32_t) c64;
}
#endif

uint32_t
crc32c (uint32_t crc, const void *buf, size_t len)
{
  pthread_once (&init_once, crc32c_init);
  uint32_t c = ~crc;
#if defined(__x86_64__)
  if (have_sse42)
    return ~crc32c_sse42 (c, buf, len);
#endif
  return ~crc32c_soft (c, buf, len);
}

uint32_t
crc32c_zeros (uint32_t crc, uint64_t n)
{
  static const char zeros[65536];
  while (n) {
    size_t k = n < sizeof zeros ? (size_t) n : sizeof zeros;
    crc = crc32c (crc, zeros, k);
    n -= k;
  }
  return crc;
}
