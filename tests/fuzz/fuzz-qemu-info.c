/* libFuzzer harness: what `qemu-img info --output=json [--backing-chain]`
 * prints, as tools/qemu-img.c reads it (json-read.c, then the members
 * taken from each image).
 *
 * A backing file's name is whatever an image says, so qemu-img's output
 * is outside input.  Each input is parsed as one JSON value; an accepted
 * one is read as a chain (an array of images) and as one image's info.
 * Nothing may crash, leak or read past the input.
 */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/json-read.h"
#include "tools/qemu-img.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* qemu-img.c names formats through backup-target.c, which would bring
 * every backup target in; the two names are all it needs here. */
const char *
sc_image_format_name (enum sc_image_format f)
{
  return f == SC_IMAGE_QCOW2 ? "qcow2" : "raw";
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct sc_jv doc;
  struct sc_qemu_chain c;
  struct sc_qemu_img_info info;
  char err[256];

  if (sc_jv_parse ((const char *) data, size, &doc, err, sizeof err) < 0)
    return 0;
  if (sc_qemu_chain_from_json (&doc, &c, err, sizeof err) == 0) {
    for (size_t i = 0; i < c.n; i++)
      if (!c.v[i].filename || strlen (c.v[i].format) >= sizeof c.v[i].format)
        abort ();
    sc_qemu_chain_free (&c);
  }
  const struct sc_jv *img = doc.type == SC_JV_ARRAY && doc.n ? &doc.items[0]
                            : &doc;
  if (sc_qemu_img_parse_info (img, &info) == 0
      && (!info.format[0] || (info.has_backing && info.backing_exact
                              && strlen (info.backing) >= sizeof info.backing)))
    abort ();
  sc_jv_free (&doc);
  return 0;
}
