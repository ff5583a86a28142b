#include "CSiloFUSE.h"

#include <sys/ioctl.h>
#include <sys/mount.h>

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
