#ifndef CSILOFUSE_H
#define CSILOFUSE_H

// The kernel's FUSE ABI, as the machine's kernel headers define it, plus the few newer pieces
// (protocol 7.40+: passthrough) that Debian 12's headers predate. Swift imports the structs from here.
#include <linux/fuse.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <spawn.h>

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

/// copy_file_range(2) at the descriptors' offsets (glibc declares it only under _GNU_SOURCE).
long silo_copy_file_range(int from, int to, unsigned long length);

/// Adds "close every descriptor from `lowest` up" to `actions` (glibc 2.34+, _GNU_SOURCE only), so a
/// spawned process inherits none of the spawner's descriptors: not its /dev/fuse connection, nor a
/// pipe a parent waits on for EOF.
int silo_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest);

/// POSIX_SPAWN_SETSID (_GNU_SOURCE only): the spawned process leads a new session.
short silo_spawn_setsid_flag(void);

/// Installs a handler that passes `signal` on to a process group: the one set with
/// `silo_forward_to_group`, or while none is, keeps it for that and for `silo_wait_for_signal`.
/// Installed synchronously (sigaction), so no signal sent after this returns is lost or acted on by
/// default, as one can be in the moment a dispatch source takes to set itself up.
int silo_forward_signal(int signal);

/// The process group handled signals go to from now on (0: none); signals kept meanwhile are sent to
/// it now.
void silo_forward_to_group(int group);

/// Blocks until a handled signal arrives while no group is set, and returns its number.
int silo_wait_for_signal(void);

/// Receives one descriptor sent over the Unix socket `socket` with SCM_RIGHTS (as fusermount3 sends
/// the /dev/fuse connection it opened); the descriptor, or -1 with errno set (0 when none came).
int silo_receive_fd(int socket);

#endif
