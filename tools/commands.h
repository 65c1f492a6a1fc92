/* shadowcopy: the verbs, each in the tools/cmd-*.c file of its topic.
 *
 * Each takes the volume the global options named (`t`, either field
 * NULL when not given) and the verb's own arguments, checks them before
 * touching any volume, and returns the exit status (cli.h). */
#ifndef SHADOWCOPY_TOOLS_COMMANDS_H
#define SHADOWCOPY_TOOLS_COMMANDS_H

#include "tools/cli.h"

/* cmd-create.c: take a snapshot (set), with writers. */
int sc_cmd_create (const struct sc_cli_target *t, int argc, char **argv);

/* cmd-snapshots.c: the snapshots, and the volume. */
int sc_cmd_list (const struct sc_cli_target *t, int argc, char **argv);
int sc_cmd_delete (const struct sc_cli_target *t, int argc, char **argv);
int sc_cmd_info (const struct sc_cli_target *t, int argc, char **argv);
int sc_cmd_checkpoint (const struct sc_cli_target *t, int argc, char **argv);
int sc_cmd_clone (const struct sc_cli_target *t, int argc, char **argv);

/* cmd-diff.c: which byte ranges changed between two points in time. */
int sc_cmd_diff (const struct sc_cli_target *t, int argc, char **argv);

/* cmd-backup.c: a snapshot copied to a backup image (full or
 * incremental) with its manifest. */
int sc_cmd_backup (const struct sc_cli_target *t, int argc, char **argv);

/* cmd-verify.c: a backup image checked against its manifest. */
int sc_cmd_verify (const struct sc_cli_target *t, int argc, char **argv);

/* cmd-restore.c: what a backup represents written to a file, a block
 * device or an NBD export. */
int sc_cmd_restore (const struct sc_cli_target *t, int argc, char **argv);

/* cmd-space.c: the diff area's counters and size limit. */
int sc_cmd_stats (const struct sc_cli_target *t, int argc, char **argv);
int sc_cmd_resize (const struct sc_cli_target *t, int argc, char **argv);

/* cmd-revert.c: the live volume reverted to a snapshot. */
int sc_cmd_revert (const struct sc_cli_target *t, int argc, char **argv);

/* cmd-scrub.c: every copy verified by the server, in the background. */
int sc_cmd_scrub (const struct sc_cli_target *t, int argc, char **argv);

/* cmd-check.c: a diff area checked offline. */
int sc_cmd_check (const struct sc_cli_target *t, int argc, char **argv);

/* cmd-salvage.c: a diff area with a damaged journal made usable. */
int sc_cmd_salvage (const struct sc_cli_target *t, int argc, char **argv);

/* cmd-writers.c: the writers and their last results. */
int sc_cmd_writers (const struct sc_cli_target *t, int argc, char **argv);

/* cmd-mount.c: a snapshot mounted as a read-only filesystem. */
int sc_cmd_mount (const struct sc_cli_target *t, int argc, char **argv);
int sc_cmd_umount (const struct sc_cli_target *t, int argc, char **argv);

/* cmd-serve.c: a volume served as its configuration file says. */
int sc_cmd_serve (const struct sc_cli_target *t, int argc, char **argv);

/* cmd-status.c: every configured volume of the host, and its state. */
int sc_cmd_status (const struct sc_cli_target *t, int argc, char **argv);

#endif
