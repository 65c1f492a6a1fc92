/* shadowcopy: CRC32C, table driven, or SSE4.2 where the CPU has it. */
#include <config.h>

#include <pthread.h>
#include <stdbool.h>

#include "cow/crc32c.h"

#define POLY 0x82f63b78u        /* Castagnoli, reflected */

static uint32_t table[8][256];
static bool have_sse42;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

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
__attribute__((target ("sse4.2")))
static uint32_t
crc32c_sse42 (uint32_t c, const uint8_t *p, size_t len)
{
  uint64_t c64 = c;
  while (len && ((uintptr_t) p & 7)) {
    c64 = __builtin_ia32_crc32qi ((uint32_t) c64, *p++);
    len--;
  }
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
