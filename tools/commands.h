/* shadowcopy: verbs that live in their own files (tools/cmd-*.c).  Each
 * returns the exit status. */
#ifndef SHADOWCOPY_TOOLS_COMMANDS_H
#define SHADOWCOPY_TOOLS_COMMANDS_H

/* `socket` is the global -c (or DIFF.sock of --diff), or NULL. */
int sc_cmd_create (const char *socket, int argc, char **argv);
int sc_cmd_mount (const char *socket, int argc, char **argv);
int sc_cmd_umount (int argc, char **argv);

#endif
