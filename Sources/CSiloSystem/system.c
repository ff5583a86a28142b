#define _GNU_SOURCE
#include "CSiloSystem.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/xattr.h>
#include <unistd.h>

long silo_copy_file_range(int from, int to, unsigned long length) {
    return (long)copy_file_range(from, NULL, to, NULL, length, 0);
}

int silo_fallocate(int fd, int mode, long long offset, long long length) {
    return fallocate(fd, mode, (off_t)offset, (off_t)length);
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

long silo_llistxattr(const char *path, char *list, unsigned long size) { return llistxattr(path, list, size); }

long silo_lgetxattr(const char *path, const char *name, void *value, unsigned long size) {
    return lgetxattr(path, name, value, size);
}

int silo_lsetxattr(const char *path, const char *name, const void *value, unsigned long size) {
    return lsetxattr(path, name, value, size, 0);
}

int silo_fsetxattr(int fd, const char *name, const void *value, unsigned long size) { return fsetxattr(fd, name, value, size, 0); }
