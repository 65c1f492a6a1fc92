/* nbdkit-shadowcopy-plugin: its configuration, the key=value parameters
 * of the nbdkit command line (nbdkit-shadowcopy-plugin(1)).
 *
 * Parsed once, before any thread starts; read-only afterwards.
 */
#ifndef SHADOWCOPY_PLUGIN_PARAMETERS_H
#define SHADOWCOPY_PLUGIN_PARAMETERS_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/volume.h"
#include "nbdkit-plugin/access.h"

struct plugin_config {
  char *disk;                   /* disk=, absolute, or an NBD URI */
  char *diff;                   /* diff=, absolute */
  char *control;                /* control=, default DIFF.sock */
  uint32_t chunk_size;          /* 0: the default */
  bool volatile_durability;
  bool write_back;              /* write-back=on (the default) */
  struct sc_volume_config space;   /* diff-max, on-full, ... */
  bool discard_snapshots;
  /* The server keys of a volume's configuration (config=FILE, issue 15):
   * nbdkit is told them by `shadowcopy serve`; the plugin only says where
   * it listens (INFO's listen line). */
  char *listen;                 /* listen=, as given; NULL: not given */
  bool tls;                     /* tls=on|require */
  char *listen_uri;             /* plugin_config_complete: from listen=,
                                   else nbdkit's command line; or NULL */
  struct sc_origin_nbd_opts nbd;   /* retry=, io-timeout=, ... */
};

extern struct plugin_config pcfg;

/* nbdkit's .config and .config_complete: 0, or -1 after nbdkit_error. */
int plugin_config (const char *key, const char *value);
int plugin_config_complete (void);
/* nbdkit's .unload. */
void plugin_config_free (void);

#define plugin_config_help \
  "disk=<FILENAME>|<NBD-URI>  (required) The origin disk (file, block\n" \
  "                    device, or NBD export: nbd://, nbd+unix://, ...).\n" \
  "diff=<FILENAME>     (required) The diff area (created when missing).\n" \
  "chunk-size=<SIZE>   Copy-on-write unit of a new diff area (default 64K).\n" \
  "control=<SOCKET>    Control socket (default DIFF.sock).\n" \
  "durability=safe|volatile  Sync copies before overwriting (default safe).\n" \
  "write-back=off|on   Acknowledge a write that must copy once queued\n" \
  "                    (default off: once its copy is durable).\n" \
  "diff-max=SIZE|N%|unbounded  Size limit of the diff area (stored).\n" \
  "on-full=delete-oldest|fail-writes  When a copy does not fit.\n" \
  "max-snapshots=N     At most N snapshots (default 512).\n" \
  "max-checkpoints=N   At most N checkpoints (default 512).\n" \
  "index-cache=SIZE    Memory for the copy map and checksums' pages\n" \
  "                    (default 224M, at least 64K).\n" \
  "discard-snapshots=on  Trims on snapshot exports free their space.\n" \
  "origin-changed=accept  Keep snapshots valid when the disk was changed\n" \
  "                    while the server was stopped (dangerous).\n" \
  "retry=SECONDS       NBD origin: keep trying to connect (default 30).\n" \
  "io-timeout=SECONDS  NBD origin: a request unanswered fails (default 30).\n" \
  "origin-check=verify|off  Check the disk for changes made while stopped.\n" \
  "origin-connections=N  NBD origin: connections if multi-conn (default 4).\n" \
  "config=<FILE>       Read key=value lines from FILE (a volume's .conf).\n" \
  access_config_help

#endif
