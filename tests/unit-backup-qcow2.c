/* Unit tests: the qcow2 backup target (tools/backup-qcow2.c) with the
 * real qemu-img and qemu-nbd: a TARGET.partial left by a killed backup is
 * kept with --resume only when it is the image this backup would make
 * (qcow2, the volume's size, the same backing file); otherwise it is
 * refused untouched (a resume state may describe it: the caller removes
 * that first), and made anew without --resume (also a raw one of another
 * size); one still held by the qemu-nbd of the killed backup is waited
 * for. */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <spawn.h>

#include "cow/crc32c.h"
#include "tests/unit-helpers.h"
#include "tools/backup-target.h"

#define MiB (1024u * 1024u)
#define SIZE (4 * MiB)

static void
setup (void)
{
  uh_setup ();
  if (system ("qemu-img --version > /dev/null 2>&1") != 0
      || system ("qemu-nbd --version > /dev/null 2>&1") != 0)
    cr_skip_test ("qemu-img or qemu-nbd is missing");
}

TestSuite (backup_qcow2, .init = setup, .fini = uh_teardown);

static struct sc_backup_target *
open_target (const char *target, const char *prev, uint64_t size,
             bool resume)
{
  struct sc_backup_target_spec spec = {
    .format = SC_IMAGE_QCOW2, .target = target, .prev = prev,
    .prev_format = SC_IMAGE_RAW, .size = size, .resume = resume,
  };
  struct sc_backup_target *t = NULL;
  char err[1024];
  int r = sc_backup_target_open (&spec, &t, err, sizeof err);
  cr_assert_eq (r, 0, "open %s: %s", target, err);
  return t;
}

/* With resume, a TARGET.partial that cannot be kept is refused
 * (-ESTALE) and left byte for byte as it was, since a resume state may
 * still describe it; without resume it is then made anew. */
static struct sc_backup_target *
refused_then_anew (const char *target, enum sc_image_format format,
                   const char *prev, uint64_t size)
{
  struct sc_backup_target_spec spec = {
    .format = format, .target = target, .prev = prev,
    .prev_format = SC_IMAGE_RAW, .size = size, .resume = true,
  };
  struct sc_backup_target *t = NULL;
  char err[1024], partial[4096];
  size_t before_len, after_len;

  snprintf (partial, sizeof partial, "%s.partial", target);
  uint8_t *before = uh_read_file (partial, &before_len);
  int r = sc_backup_target_open (&spec, &t, err, sizeof err);
  cr_assert_eq (r, -ESTALE, "a partial that cannot be kept was not refused "
                "(%d%s%s)", r, r < 0 ? ": " : "", r < 0 ? err : "");
  cr_assert (strstr (err, "cannot be kept"), "refused saying: %s", err);
  uint8_t *after = uh_read_file (partial, &after_len);
  cr_assert (before_len == after_len
             && memcmp (before, after, before_len) == 0,
             "the refused partial was changed");
  free (before);
  free (after);
  spec.resume = false;
  r = sc_backup_target_open (&spec, &t, err, sizeof err);
  cr_assert_eq (r, 0, "open %s without resume: %s", target, err);
  cr_assert (!t->resumed);
  return t;
}

/* A backup that writes 64 KiB of pattern `seed` at `off`, syncs, and is
 * killed (SIGKILL) before its commit: TARGET.partial is left. */
static void
killed_backup (const char *target, const char *prev, uint64_t size,
               uint64_t off, uint64_t seed)
{
  pid_t pid = fork ();
  cr_assert_neq (pid, -1);
  if (pid == 0) {
    struct sc_backup_target_spec spec = {
      .format = SC_IMAGE_QCOW2, .target = target, .prev = prev,
      .prev_format = SC_IMAGE_RAW, .size = size,
    };
    struct sc_backup_target *t;
    struct sc_backup_sink s;
    char err[1024], buf[65536];
    if (sc_backup_target_open (&spec, &t, err, sizeof err) < 0)
      _exit (1);
    sc_backup_target_sink (t, &s);
    uh_pattern (buf, sizeof buf, seed, off);
    if (s.write (s.opaque, buf, sizeof buf, off) < 0
        || sc_backup_target_sync (t, err, sizeof err) < 0)
      _exit (1);
    raise (SIGKILL);
    _exit (1);
  }
  int status;
  cr_assert_eq (waitpid (pid, &status, 0), pid);
  cr_assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL,
             "the backup failed before it was killed");
}

/* The CRC32C of the first MiB of the target's content. */
static uint32_t
first_mib_crc (struct sc_backup_target *t)
{
  uint32_t crc;
  char err[1024];
  int r = sc_backup_target_block_crc (t, MiB, 0, &crc, err, sizeof err);
  cr_assert_eq (r, 0, "block_crc: %s", err);
  return crc;
}

/* The CRC32C of the first MiB of prev (NULL: zeros) with 64 KiB of
 * pattern `seed` at `off` (seed 0: none). */
static uint32_t
expected_crc (const char *prev, uint64_t off, uint64_t seed)
{
  static char buf[MiB];
  memset (buf, 0, sizeof buf);
  if (prev)
    uh_pread (prev, buf, sizeof buf, 0);
  if (seed)
    uh_pattern (buf + off, 65536, seed, off);
  return crc32c (0, buf, sizeof buf);
}

Test (backup_qcow2, resume_keeps_the_partial_of_a_killed_full_backup)
{
  char *target = uh_path ("full.qcow2");
  killed_backup (target, NULL, SIZE, 65536, 7);

  struct sc_backup_target *t = open_target (target, NULL, SIZE, true);
  cr_assert (t->resumed, "a partial full backup was not kept");
  cr_assert_eq (first_mib_crc (t), expected_crc (NULL, 65536, 7),
                "the kept partial lost what was written");
  char err[1024];
  cr_assert_eq (sc_backup_target_commit (t, err, sizeof err), 0, "%s", err);
  struct stat st;
  cr_assert_eq (stat (target, &st), 0, "no TARGET after the commit");
  free (target);
}

Test (backup_qcow2, resume_keeps_an_overlay_on_the_same_prev)
{
  char *prev = uh_path ("prev.img"), *target = uh_path ("inc.qcow2");
  uh_make_file (prev, SIZE, 1);
  killed_backup (target, prev, SIZE, 131072, 9);

  struct sc_backup_target *t = open_target (target, prev, SIZE, true);
  cr_assert (t->resumed, "a partial overlay on the same PREV was not kept");
  cr_assert_eq (first_mib_crc (t), expected_crc (prev, 131072, 9),
                "the kept overlay does not read as PREV and what was written");
  sc_backup_target_abort (t);
  cr_assert_eq (access (target, F_OK), -1);
  free (prev);
  free (target);
}

Test (backup_qcow2, resume_refuses_untouched_an_overlay_on_another_prev)
{
  char *a = uh_path ("a.img"), *b = uh_path ("b.img");
  char *target = uh_path ("inc.qcow2");
  uh_make_file (a, SIZE, 1);
  uh_make_file (b, SIZE, 2);
  killed_backup (target, a, SIZE, 0, 5);

  struct sc_backup_target *t = refused_then_anew (target, SC_IMAGE_QCOW2, b,
                                                  SIZE);
  cr_assert_eq (first_mib_crc (t), expected_crc (b, 0, 0),
                "the new overlay does not read as its PREV");
  sc_backup_target_abort (t);
  free (a);
  free (b);
  free (target);
}

Test (backup_qcow2, resume_refuses_untouched_an_overlay_where_a_full_was_left)
{
  char *prev = uh_path ("prev.img"), *target = uh_path ("x.qcow2");
  uh_make_file (prev, SIZE, 3);
  killed_backup (target, NULL, SIZE, 0, 5);

  struct sc_backup_target *t = refused_then_anew (target, SC_IMAGE_QCOW2,
                                                  prev, SIZE);
  cr_assert_eq (first_mib_crc (t), expected_crc (prev, 0, 0));
  sc_backup_target_abort (t);
  free (prev);
  free (target);
}

Test (backup_qcow2, resume_refuses_untouched_a_partial_of_another_size)
{
  char *target = uh_path ("full.qcow2");
  killed_backup (target, NULL, SIZE, 0, 5);

  struct sc_backup_target *t = refused_then_anew (target, SC_IMAGE_QCOW2,
                                                  NULL, 2 * SIZE);
  cr_assert_eq (first_mib_crc (t), expected_crc (NULL, 0, 0));
  sc_backup_target_abort (t);
  free (target);
}

Test (backup_qcow2, resume_refuses_untouched_a_partial_that_is_not_qcow2)
{
  char *target = uh_path ("full.qcow2"), *partial = uh_path ("full.qcow2.partial");
  uh_make_file (partial, SIZE, 4);

  struct sc_backup_target *t = refused_then_anew (target, SC_IMAGE_QCOW2,
                                                  NULL, SIZE);
  cr_assert_eq (first_mib_crc (t), expected_crc (NULL, 0, 0));
  sc_backup_target_abort (t);
  free (target);
  free (partial);
}

Test (backup_qcow2, without_resume_a_partial_is_made_anew)
{
  char *target = uh_path ("full.qcow2");
  killed_backup (target, NULL, SIZE, 0, 5);

  struct sc_backup_target *t = open_target (target, NULL, SIZE, false);
  cr_assert (!t->resumed, "a partial was kept without resume");
  cr_assert_eq (first_mib_crc (t), expected_crc (NULL, 0, 0),
                "a stale partial's data survived");
  sc_backup_target_abort (t);
  free (target);
}

Test (backup_qcow2, a_partial_held_by_an_exiting_qemu_nbd_is_waited_for)
{
  extern char **environ;
  char *target = uh_path ("full.qcow2"), *partial = uh_path ("full.qcow2.partial");
  char *sock = uh_path ("qemu-nbd.sock");
  killed_backup (target, NULL, SIZE, 0, 5);

  /* The killed backup's qemu-nbd, still holding the image for 0.5 s. */
  char *argv[] = { (char *) "timeout", (char *) "0.5", (char *) "qemu-nbd",
                   (char *) "-f", (char *) "qcow2", (char *) "-k", sock,
                   partial, NULL };
  pid_t pid;
  cr_assert_eq (posix_spawnp (&pid, "timeout", NULL, NULL, argv, environ), 0);
  for (int i = 0; i < 200 && access (sock, F_OK) < 0; i++)
    usleep (10000);
  cr_assert_eq (access (sock, F_OK), 0, "qemu-nbd did not start");

  struct sc_backup_target *t = open_target (target, NULL, SIZE, true);
  cr_assert (t->resumed, "the partial was not kept");
  cr_assert_eq (first_mib_crc (t), expected_crc (NULL, 0, 5));
  sc_backup_target_abort (t);
  waitpid (pid, NULL, 0);
  free (target);
  free (partial);
  free (sock);
}

Test (backup_qcow2, resume_refuses_untouched_a_damaged_qcow2_partial)
{
  char *target = uh_path ("full.qcow2"), *partial = uh_path ("full.qcow2.partial");
  killed_backup (target, NULL, SIZE, 0, 5);
  uh_pwrite (partial, "XXXX", 4, 0);

  struct sc_backup_target *t = refused_then_anew (target, SC_IMAGE_QCOW2,
                                                  NULL, SIZE);
  cr_assert_eq (first_mib_crc (t), expected_crc (NULL, 0, 0));
  sc_backup_target_abort (t);
  free (target);
  free (partial);
}

Test (backup_qcow2, raw_resume_refuses_untouched_a_partial_of_another_size)
{
  char *target = uh_path ("full.img"), *partial = uh_path ("full.img.partial");
  uh_make_file (partial, SIZE / 2, 6);

  struct sc_backup_target *t = refused_then_anew (target, SC_IMAGE_RAW, NULL,
                                                  SIZE);
  sc_backup_target_abort (t);
  cr_assert_eq (access (partial, F_OK), -1);
  free (target);
  free (partial);
}
