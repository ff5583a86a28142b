#ifndef CSILOFUSE_H
#define CSILOFUSE_H

// The kernel's FUSE ABI, as the machine's kernel headers define it, plus the few newer pieces
// (protocol 7.40+: passthrough) that Debian 12's headers predate. Swift imports the structs from here.
#include <linux/fuse.h>
#include <stdint.h>
#include <sys/ioctl.h>

// Protocol 7.40 (Linux 6.9): passthrough. INIT's flag (bit 37, so in flags2), the open reply's flag,
// and the backing-file ioctls. `fuse_open_out.padding` is 7.40's `backing_id`, and the first word of
// `fuse_init_out.unused` its `max_stack_depth`.
#define SILO_FUSE_PASSTHROUGH (1ULL << 37)
#define SILO_FOPEN_PASSTHROUGH (1U << 7)

struct silo_fuse_backing_map {
    int32_t fd;
    uint32_t flags;
    uint64_t padding;
};

#define SILO_FUSE_DEV_IOC_BACKING_OPEN _IOW(FUSE_DEV_IOC_MAGIC, 1, struct silo_fuse_backing_map)
#define SILO_FUSE_DEV_IOC_BACKING_CLOSE _IOW(FUSE_DEV_IOC_MAGIC, 2, uint32_t)

/// Registers `fd` (an open regular file) with the connection on `device` as a passthrough backing
/// file; returns its id (> 0) for an open reply, or -1 with errno set (EPERM without CAP_SYS_ADMIN).
int silo_fuse_backing_open(int device, int fd);

/// Drops a backing id; opens that use it keep their file.
int silo_fuse_backing_close(int device, int backing_id);

/// Clones the session on `device` onto `fd` (a fresh open of /dev/fuse), so another thread can read
/// requests from its own descriptor. Returns 0 or -1 with errno set.
int silo_fuse_clone(int fd, int device);

/// Mounts a FUSE file system served through `device` at `target`; 0 or -1 with errno set.
int silo_fuse_mount(const char *target, const char *source, const char *options, int read_only);

/// Lazily unmounts `target`; 0 or -1 with errno set.
int silo_fuse_unmount(const char *target);

#endif
