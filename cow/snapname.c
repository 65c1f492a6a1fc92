/* shadowcopy: snapshot names and invalidity reasons. */
#include <config.h>

#include <string.h>

#include "cow/diffarea.h"

bool
sc_snapshot_name_valid (const char *name)
{
  size_t len = strlen (name);
  if (len == 0 || len > SC_NAME_MAX || name[0] == '.' ||
      strcmp (name, "live") == 0)
    return false;
  return strspn (name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789._:+-") == len;
}

const char *
sc_invalid_reason_text (uint32_t reason)
{
  switch (reason) {
  case SC_VALID: return "valid";
  case SC_INVALID_COPY_WRITE: return "copy-on-write write to the diff area failed";
  case SC_INVALID_COPY_READ: return "copy-on-write read of the origin failed";
  case SC_INVALID_DIFF_FULL: return "diff area full";
  case SC_INVALID_METADATA: return "diff-area metadata write failed";
  case SC_INVALID_VOLATILE:
    return "unclean stop while durability=volatile (copies may be lost)";
  case SC_DROPPED_DIFF_FULL:
    return "dropped by policy: diff area full (on-full=delete-oldest)";
  case SC_DROPPED_MAX_SNAPSHOTS:
    return "dropped by policy: max-snapshots reached (delete-oldest)";
  case SC_DROPPED_SHRINK:
    return "dropped by policy: diff area shrunk (resize --force)";
  case SC_INVALID_DAMAGED:
    return "damaged: copied data failed its checksum";
  case SC_INVALID_ORIGIN_CHANGED:
    return "origin changed while the server was stopped";
  case SC_INVALID_SALVAGED:
    return "journal damaged: salvage could not prove this snapshot intact";
  case SC_DROPPED_MAX_CHECKPOINTS:
    return "dropped by policy: max-checkpoints reached (delete-oldest)";
  case SC_INVALID_ORIGIN_FLUSH:
    return "the origin's flush failed when the snapshot was taken";
  default: return "unknown reason";
  }
}
