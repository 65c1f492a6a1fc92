/* shadowcopy: whether writing one path can change the bytes of another.
 *
 * restore must not write over a file of the backup it reads, and a
 * DEST can reach such a file by another name: a loop device over it, a
 * partition of such a loop device, a device-mapper or md device over
 * one of those.  So each path is taken down to the storage below it:
 *   - itself: a block device by its device number, anything else by
 *     its device and inode (symbolic links followed);
 *   - for a block device, what its writes land on, followed down (at
 *     most SC_STORAGE_DEPTH_MAX levels): the whole disk of a partition
 *     (sysfs: /sys/dev/block/MAJ:MIN/partition, then its parent
 *     directory), the backing file of a loop device
 *     (loop/backing_file, stat'ed), the devices under a device-mapper
 *     or md device (slaves/).
 * Two paths overlap when either is below the other (a partition and
 * its disk overlap; two partitions of one disk do not).
 *
 * Not seen: an NBD export (a URI, or /dev/nbdN: its server's files are
 * not known here), storage reached over a network, a device stacked in
 * a way sysfs does not show, a loop device whose backing file was
 * deleted or is not visible from this mount namespace.
 */
#ifndef SHADOWCOPY_TOOLS_STORAGE_OVERLAP_H
#define SHADOWCOPY_TOOLS_STORAGE_OVERLAP_H

#define SC_STORAGE_DEPTH_MAX 16

enum sc_storage_overlap {
  SC_STORAGE_APART = 0,         /* no overlap seen (or a path is absent) */
  SC_STORAGE_SAME,              /* the same file or device */
  SC_STORAGE_STACKED,           /* one is below the other */
};

enum sc_storage_overlap sc_storage_overlap (const char *a, const char *b);

#endif
