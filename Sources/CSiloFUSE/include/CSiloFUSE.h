#ifndef CSILOFUSE_H
#define CSILOFUSE_H

// The kernel's FUSE ABI, as the machine's kernel headers define it, plus the few newer pieces
// (protocol 7.40+: passthrough) that Debian 12's headers predate. Swift imports the structs from here.
#include <linux/fuse.h>
#include <stdint.h>

#ifndef FUSE_PASSTHROUGH
#define FUSE_PASSTHROUGH_FLAG (1ULL << 37)
#else
#define FUSE_PASSTHROUGH_FLAG FUSE_PASSTHROUGH
#endif


/// Clones the session on `device` onto `fd` (a fresh open of /dev/fuse), so another thread can read
/// requests from its own descriptor. Returns 0 or -1 with errno set.
int silo_fuse_clone(int fd, int device);

/// Mounts a FUSE file system served through `device` at `target`; 0 or -1 with errno set.
int silo_fuse_mount(const char *target, const char *source, const char *options, int read_only);

/// Lazily unmounts `target`; 0 or -1 with errno set.
int silo_fuse_unmount(const char *target);

#endif
