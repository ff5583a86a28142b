#ifndef CSILOSYSTEM_H
#define CSILOSYSTEM_H

// System calls and process plumbing Swift cannot reach directly (glibc's _GNU_SOURCE declarations,
// signal handlers that must be installed synchronously, SCM_RIGHTS): nothing of FUSE or of volumes.

#include <spawn.h>

/// copy_file_range(2) at the descriptors' offsets (glibc declares it only under _GNU_SOURCE).
long silo_copy_file_range(int from, int to, unsigned long length);

/// fallocate(2) with its mode bits (glibc declares it only under _GNU_SOURCE).
int silo_fallocate(int fd, int mode, long long offset, long long length);

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

/// Extended attributes of a path, not following a final symlink, and of an open file: the
/// <sys/xattr.h> calls, which Swift does not import. Each returns as its libc call does.
long silo_llistxattr(const char *path, char *list, unsigned long size);
long silo_lgetxattr(const char *path, const char *name, void *value, unsigned long size);
int silo_lsetxattr(const char *path, const char *name, const void *value, unsigned long size);
int silo_fsetxattr(int fd, const char *name, const void *value, unsigned long size);

#endif
