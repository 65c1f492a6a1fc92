/* shadowcopy: a volume's configuration file (volume-conf.h). */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/volume-conf.h"

const char *
sc_volume_conf_dir (void)
{
  const char *d = getenv ("SHADOWCOPY_CONFDIR");

  return d && *d ? d : SC_SYSCONFDIR "/shadowcopy";
}

const char *
sc_volume_run_dir (void)
{
  const char *d = getenv ("SHADOWCOPY_RUNDIR");

  return d && *d ? d : SC_RUN_DIR;
}

int
sc_volume_name_ok (const char *name)
{
  size_t n = strlen (name);

  if (n == 0 || n > SC_VOLUME_NAME_MAX || name[0] == '.' || name[0] == '-')
    return 0;
  return strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                 "0123456789._-") == n;
}

void
sc_volume_conf_free (struct sc_volume_conf *vc)
{
  sc_config_free (&vc->cf);
}

int
sc_volume_conf_load (const char *name, const char *path,
                     struct sc_volume_conf *vc, char *err, size_t errlen)
{
  const struct sc_config_entry *e;
  char why[1024];

  memset (vc, 0, sizeof *vc);
  if (!sc_volume_name_ok (name)) {
    snprintf (err, errlen, "volume '%s': not a volume name (1 to %d of "
              "letters, digits, '.', '_' and '-')", name, SC_VOLUME_NAME_MAX);
    return -1;
  }
  snprintf (vc->name, sizeof vc->name, "%s", name);
  if (path)
    snprintf (vc->path, sizeof vc->path, "%s", path);
  else
    snprintf (vc->path, sizeof vc->path, "%s/%s.conf", sc_volume_conf_dir (),
              name);
  if (sc_config_read (vc->path, &vc->cf, why, sizeof why) < 0) {
    snprintf (err, errlen, "volume %s: %s", name, why);
    return -1;
  }
  e = sc_config_get (&vc->cf, "disk");
  vc->disk = e ? e->value : NULL;
  e = sc_config_get (&vc->cf, "diff");
  vc->diff = e ? e->value : NULL;
  if (!vc->disk || !vc->diff || !*vc->disk || !*vc->diff) {
    snprintf (err, errlen, "volume %s: %s: needs disk= and diff=", name,
              vc->path);
    goto fail;
  }
  e = sc_config_get (&vc->cf, "control");
  if (e && e->value[0] != '/') {
    snprintf (err, errlen, "volume %s: %s:%u: control=%s: must be an "
              "absolute path", name, vc->path, e->line, e->value);
    goto fail;
  }
  if (e)
    snprintf (vc->control, sizeof vc->control, "%s", e->value);
  else {
    snprintf (vc->control, sizeof vc->control, "%s/%s.ctl",
              sc_volume_run_dir (), name);
    vc->control_default = 1;
  }
  e = sc_config_get (&vc->cf, "listen");
  if (e && sc_listen_parse (e->value, &vc->listen, why, sizeof why) < 0) {
    snprintf (err, errlen, "volume %s: %s:%u: %s", name, vc->path, e->line,
              why);
    goto fail;
  }
  if (!e) {
    vc->listen.kind = SC_LISTEN_UNIX;
    if ((size_t) snprintf (vc->listen.path, sizeof vc->listen.path,
                           "%s/%s.nbd", sc_volume_run_dir (), name)
        >= sizeof vc->listen.path || vc->listen.path[0] != '/') {
      snprintf (err, errlen, "volume %s: the default socket %s/%s.nbd: not "
                "an absolute path of at most %d bytes", name,
                sc_volume_run_dir (), name, SC_LISTEN_PATH_MAX);
      goto fail;
    }
    vc->listen_default = 1;
  }
  e = sc_config_get (&vc->cf, "tls");
  vc->tls = e ? e->value : "off";
  if (strcmp (vc->tls, "off") != 0 && strcmp (vc->tls, "on") != 0 &&
      strcmp (vc->tls, "require") != 0) {
    snprintf (err, errlen, "volume %s: %s:%u: tls=%s: must be off, on or "
              "require", name, vc->path, e->line, e->value);
    goto fail;
  }
  static const char *const tls_files[] = { "tls-certificates", "tls-psk" };
  for (size_t i = 0; i < 2; i++) {
    e = sc_config_get (&vc->cf, tls_files[i]);
    if (e && e->value[0] != '/') {
      snprintf (err, errlen, "volume %s: %s:%u: %s=%s: must be an absolute "
                "path", name, vc->path, e->line, e->key, e->value);
      goto fail;
    }
    *(i ? &vc->tls_psk : &vc->tls_certificates) = e ? e->value : NULL;
  }
  return 0;

 fail:
  sc_config_free (&vc->cf);
  return -1;
}
