/* shadowcopy: a volume's configuration file, SYSCONFDIR/shadowcopy/
 * VOLUME.conf (the directory: $SHADOWCOPY_CONFDIR when set), for serve,
 * status and --volume.  Its plugin keys are the plugin's to check
 * (nbdkit-shadowcopy-plugin(1)); the CLI reads the ones it needs: disk=
 * and diff= (present), and the server keys listen=, control=, tls=,
 * tls-certificates=, tls-psk= (checked, with their defaults). */
#ifndef SHADOWCOPY_TOOLS_VOLUME_CONF_H
#define SHADOWCOPY_TOOLS_VOLUME_CONF_H

#include <stddef.h>

#include "engine/config-file.h"
#include "engine/listen-address.h"

#define SC_VOLUME_NAME_MAX 64
#define SC_RUN_DIR "/run/shadowcopy"

struct sc_volume_conf {
  char name[SC_VOLUME_NAME_MAX + 1];
  char path[4096];              /* the file */
  struct sc_config_file cf;
  const char *disk, *diff;      /* in cf */
  char control[4096];           /* control=, or RUNDIR/NAME.ctl */
  struct sc_listen_address listen;  /* listen=, or unix:RUNDIR/NAME.nbd */
  int control_default, listen_default;  /* 1: not in the file (serve
                                           passes them to the plugin) */
  const char *tls;              /* off, on, require; "off" when not set */
  const char *tls_certificates, *tls_psk;   /* or NULL */
};

/* The directory of the volumes' files. */
const char *sc_volume_conf_dir (void);

/* The directory of the volumes' default sockets: /run/shadowcopy, or
 * $SHADOWCOPY_RUNDIR when set (tests).  serve, --volume, status and the
 * snapshot unit all find a volume's sockets through sc_volume_conf_load,
 * which uses it. */
const char *sc_volume_run_dir (void);

/* Whether NAME can name a volume: 1 to 64 of [A-Za-z0-9._-], not
 * starting with '.' or '-'. */
int sc_volume_name_ok (const char *name);

/* Read volume NAME's file (`path`, or NULL: DIR/NAME.conf) and check
 * what the CLI reads of it.  0, or -1 with "volume NAME: why" in err.
 * sc_volume_conf_free it after a 0. */
int sc_volume_conf_load (const char *name, const char *path,
                         struct sc_volume_conf *vc, char *err,
                         size_t errlen);
void sc_volume_conf_free (struct sc_volume_conf *vc);

#endif
