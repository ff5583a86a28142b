#define _GNU_SOURCE
#include "CSiloFUSE.h"

#include <sys/ioctl.h>
#include <signal.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <string.h>
#include <errno.h>
#include <sys/mount.h>
#include <unistd.h>

int silo_fuse_clone(int fd, int device) {
    uint32_t master = (uint32_t)device;
    return ioctl(fd, FUSE_DEV_IOC_CLONE, &master);
}

int silo_fuse_mount(const char *target, const char *source, const char *options, int read_only) {
    unsigned long flags = MS_NOSUID | MS_NODEV | (read_only ? MS_RDONLY : 0);
    return mount(source, target, "fuse.silo", flags, options);
}

int silo_fuse_unmount(const char *target) {
    return umount2(target, MNT_DETACH);
}

int silo_fuse_backing_open(int device, int fd) {
    struct silo_fuse_backing_map map = {.fd = fd, .flags = 0, .padding = 0};
    return ioctl(device, SILO_FUSE_DEV_IOC_BACKING_OPEN, &map);
}

int silo_fuse_backing_close(int device, int backing_id) {
    uint32_t id = (uint32_t)backing_id;
    return ioctl(device, SILO_FUSE_DEV_IOC_BACKING_CLOSE, &id);
}
