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

long silo_copy_file_range(int from, int to, unsigned long length) {
    return (long)copy_file_range(from, NULL, to, NULL, length, 0);
}

int silo_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
}

short silo_spawn_setsid_flag(void) {
    return POSIX_SPAWN_SETSID;
}

int silo_receive_fd(int socket) {
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof(control));
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control)};
    ssize_t received;
    do {
        received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    } while (received < 0 && errno == EINTR);
    if (received < 0) return -1;
    if (received == 0) return 0;
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    if (header == NULL || header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) {
        errno = EPROTO;
        return -1;
    }
    int fd;
    memcpy(&fd, CMSG_DATA(header), sizeof(fd));
    return fd;
}

static volatile sig_atomic_t forward_group = 0;
static volatile sig_atomic_t forward_pending[65];
static int signal_pipe[2] = {-1, -1};

static void forward_handler(int signal) {
    int group = forward_group;
    if (group > 0) {
        kill(-group, signal);
        return;
    }
    if (signal > 0 && signal < 65) forward_pending[signal] = 1;
    if (signal_pipe[1] >= 0) {
        unsigned char byte = (unsigned char)signal;
        ssize_t ignored = write(signal_pipe[1], &byte, 1);
        (void)ignored;
    }
}

int silo_forward_signal(int signal) {
    if (signal_pipe[0] < 0 && pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = forward_handler;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    return sigaction(signal, &action, NULL);
}

void silo_forward_to_group(int group) {
    forward_group = group;
    for (int signal = 1; signal < 65; signal++) {
        if (forward_pending[signal]) {
            forward_pending[signal] = 0;
            if (group > 0) kill(-group, signal);
        }
    }
}

int silo_wait_for_signal(void) {
    struct pollfd wait = {.fd = signal_pipe[0], .events = POLLIN};
    for (;;) {
        unsigned char byte;
        if (read(signal_pipe[0], &byte, 1) == 1) return byte;
        if (poll(&wait, 1, -1) < 0 && errno != EINTR) return -1;
    }
}
