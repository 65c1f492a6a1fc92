/* shadowcopy: making a file's new name durable (fsync of its directory),
 * shared by the backup target and the manifest. */
#ifndef SHADOWCOPY_TOOLS_DURABLE_H
#define SHADOWCOPY_TOOLS_DURABLE_H

/* fsync the directory holding `path`, so that a rename into it survives
 * a power cut.  0 or a negative errno. */
int sc_fsync_dir_of (const char *path);

#endif
