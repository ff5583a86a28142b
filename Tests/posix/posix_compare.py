#!/usr/bin/env python3
"""POSIX behaviour comparison: run the same file-system cases in two directories, compare outcomes.

Usage
-----
    posix_compare.py run DIR
        Runs every case inside DIR (which must exist and be writable by the caller; 0777 is
        simplest). Each case works in a fresh subdirectory DIR/cNNN-name that it creates and
        removes afterwards as far as it can. Prints one JSON object to stdout:
            {"uid": <euid>, "cases": {"<case name>": <result>, ...}}

    posix_compare.py run DIR --only 'rename/*'
        Runs only the cases whose name matches the fnmatch pattern (for debugging).

    posix_compare.py list
        Prints the case names, one a line.

    posix_compare.py compare A.json B.json [--allowed allowed.json] [--json]
        Compares two outputs of `run` case by case. A difference is "allowed" when its case name
        matches an entry of allowed.json, a JSON list of objects
            {"case": "<fnmatch pattern>", "why": "<reason>"}            (any uid)
            {"case": "<fnmatch pattern>", "why": "<reason>", "uid": N}  (only when A's uid is N)
        and "unexpected" otherwise. Prints each difference (case, value on A, value on B) and
        then `same N, allowed N, unexpected N`; with --json prints one JSON object instead:
            {"same": N, "allowed": N, "unexpected": N, "differences": [...]}
        Exits 1 when any difference is unexpected, 0 otherwise.

The program is meant to be run three times per directory: as root and as two ordinary users
(uids 2001 and 2002, gid equal to uid, no supplementary groups), e.g.
    setpriv --reuid=2001 --regid=2001 --clear-groups python3 posix_compare.py run DIR
Cases that involve a second user fork a child that switches to uid 2001 or 2002 (`as_user`);
as root this tests behaviour across owners, as an ordinary user the switch (or a chown that
needs root) fails and the EPERM the kernel gives is recorded: a valid compared outcome too.

Results are deterministic and independent of DIR, inode and device numbers and the time of day:
outcomes are errno names ("EPERM") or "ok", modes are octal strings, times are relations
("same", "now-ish", "changed") measured against deliberately old explicit times, directory
listings and xattr lists are sorted, contents are short strings or a length and SHA-256 prefix.
mtime is aged with an explicit old time before an operation; ctime cannot be set, so cases that
record a ctime relation pause 20 ms first. A case that raises an unexpected Python exception
records {"exception": "..."}; one that runs longer than CASE_TIMEOUT seconds records a
CaseTimeout exception (its forked children are killed) and the run goes on.

Python 3 standard library only; ctypes supplies linkat (os.link without dir_fd calls link(2),
which never follows symlinks), renameat2, utimensat, futimens, fallocate, fchmodat2 and
getxattr/listxattr with an explicit buffer size. Run it with an interpreter every user can
execute (e.g. /usr/bin/python3, not a pyenv shim under /root).
"""

import argparse
import ctypes
import errno
import fnmatch
import functools
import hashlib
import json
import os
import signal
import stat
import sys
import time

U1, U2 = 2001, 2002      # the two ordinary users; gid equals uid
FOREIGN = 2003           # an id that is neither user's, nor a group anyone is in
OLD_NS = 1_000_000_000_123_456_789   # 2001-09-09T01:46:40.123456789Z, for aging files
CASE_TIMEOUT = 60        # seconds; a case that hangs (a broken mount) is recorded, not waited on


class CaseTimeout(Exception):
    pass


def _on_alarm(_signum, _frame):
    raise CaseTimeout("case took longer than %d s" % CASE_TIMEOUT)

# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

CASES = []          # [(name, function)] in registration order
_NAMES = set()


def case(name):
    """Register a case: a function of no arguments, run with the case directory as cwd."""
    def register(fn):
        if name in _NAMES:
            raise SystemExit("duplicate case name " + name)
        _NAMES.add(name)
        CASES.append((name, fn))
        return fn
    return register


def cases(fmt, params):
    """Register one case per parameter; fmt is a str.format pattern for the name."""
    def register(fn):
        for p in params:
            args = p if isinstance(p, tuple) else (p,)
            case(fmt.format(*args))(functools.partial(fn, *args))
        return fn
    return register

# --------------------------------------------------------------------------------------------
# Syscalls Python lacks (ctypes)
# --------------------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_SYMLINK_FOLLOW = 0x400
AT_EMPTY_PATH = 0x1000
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
FALLOC_KEEP_SIZE, FALLOC_PUNCH_HOLE, FALLOC_COLLAPSE_RANGE = 0x01, 0x02, 0x08
FALLOC_ZERO_RANGE, FALLOC_INSERT_RANGE = 0x10, 0x20
SYS_FCHMODAT2 = 452      # same number on every architecture (unified syscall table)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                            ctypes.c_uint]
_libc.linkat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
_libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(_Timespec), ctypes.c_int]
_libc.futimens.argtypes = [ctypes.c_int, ctypes.POINTER(_Timespec)]
_libc.fallocate64.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
_libc.lgetxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
_libc.lgetxattr.restype = ctypes.c_ssize_t
_libc.llistxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
_libc.llistxattr.restype = ctypes.c_ssize_t
_libc.syscall.restype = ctypes.c_long


def _check(result):
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def renameat2(old, new, flags):
    _check(_libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags))


def linkat(old, new, flags, old_dirfd=AT_FDCWD):
    """linkat(2); os.link without a dir_fd calls link(2), which never follows symlinks."""
    _check(_libc.linkat(old_dirfd, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags))


def _timespecs(times):
    if times is None:
        return None
    arr = (_Timespec * 2)()
    for i, (sec, nsec) in enumerate(times):
        arr[i].tv_sec, arr[i].tv_nsec = sec, nsec
    return arr


def utimensat(path, times=None, flags=0):
    """times: None (both now) or ((asec, ansec), (msec, mnsec)); nsec may be UTIME_NOW/OMIT."""
    _check(_libc.utimensat(AT_FDCWD, os.fsencode(path), _timespecs(times), flags))


def futimens(fd, times=None):
    _check(_libc.futimens(fd, _timespecs(times)))


def fallocate(fd, mode, offset, length):
    _check(_libc.fallocate64(fd, mode, offset, length))


def fchmodat2(path, mode, flags):
    _check(_libc.syscall(ctypes.c_long(SYS_FCHMODAT2), ctypes.c_int(AT_FDCWD),
                         ctypes.c_char_p(os.fsencode(path)), ctypes.c_uint(mode),
                         ctypes.c_uint(flags)))


def lgetxattr_sized(path, name, size):
    """getxattr with a caller-chosen buffer size (0 asks for the value's size)."""
    buf = ctypes.create_string_buffer(max(size, 1))
    return _check(_libc.lgetxattr(os.fsencode(path), os.fsencode(name),
                                  buf if size else None, size))


def llistxattr_sized(path, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    return _check(_libc.llistxattr(os.fsencode(path), buf if size else None, size))

# --------------------------------------------------------------------------------------------
# Recording helpers: everything a case returns goes through these
# --------------------------------------------------------------------------------------------


def ename(exc):
    """errno name of an OSError ("ENOENT"), or the exception type when it carries none."""
    if getattr(exc, "errno", None):
        return errno.errorcode.get(exc.errno, "E%d" % exc.errno)
    return type(exc).__name__


def tr(fn, *args, **kwargs):
    """Outcome of a call: "ok" or the errno name it failed with."""
    try:
        fn(*args, **kwargs)
        return "ok"
    except OSError as exc:
        return ename(exc)


def val(fn, *args, **kwargs):
    """The call's (JSON-friendly) value, or the errno name it failed with."""
    try:
        return fn(*args, **kwargs)
    except OSError as exc:
        return ename(exc)


def show(data):
    """Bytes as a short comparable value: text, hex, or length plus SHA-256 prefix."""
    if len(data) <= 64 and all(32 <= c < 127 for c in data):
        return data.decode()
    if len(data) <= 32:
        return "hex:" + data.hex()
    return "len=%d sha256=%s" % (len(data), hashlib.sha256(data).hexdigest()[:16])


def kind(m):
    for test, name in ((stat.S_ISREG, "reg"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "lnk"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISCHR, "chr"), (stat.S_ISBLK, "blk"),
                       (stat.S_ISSOCK, "sock")):
        if test(m):
            return name
    return "?%o" % stat.S_IFMT(m)


def summary(s):
    """The comparable part of a stat result (no times, inode, device, blocks; no dir sizes)."""
    d = {"type": kind(s.st_mode), "mode": "%04o" % stat.S_IMODE(s.st_mode),
         "uid": s.st_uid, "gid": s.st_gid, "nlink": s.st_nlink}
    if d["type"] in ("reg", "lnk"):
        d["size"] = s.st_size
    if d["type"] in ("chr", "blk"):
        d["rdev"] = "%d,%d" % (os.major(s.st_rdev), os.minor(s.st_rdev))
    return d


def st(path, follow=True):
    return val(lambda: summary(os.stat(path, follow_symlinks=follow)))


def lst(path):
    return st(path, follow=False)


def fst(fd):
    return val(lambda: summary(os.fstat(fd)))


def mode(path, follow=True):
    return val(lambda: "%04o" % stat.S_IMODE(os.stat(path, follow_symlinks=follow).st_mode))


def nlink(path, follow=True):
    return val(lambda: os.stat(path, follow_symlinks=follow).st_nlink)


def size(path):
    return val(lambda: os.stat(path).st_size)


def ids(path, follow=True):
    return val(lambda: [os.stat(path, follow_symlinks=follow).st_uid,
                        os.stat(path, follow_symlinks=follow).st_gid])


def same_file(a, b, follow=True):
    """Whether two names are the same inode (relation only; numbers are never recorded)."""
    def compare():
        sa, sb = os.stat(a, follow_symlinks=follow), os.stat(b, follow_symlinks=follow)
        return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)
    return val(compare)


def listing(path="."):
    return val(lambda: sorted(os.listdir(path)))


def exists(path):
    return os.path.lexists(path)


def mkfile(path, data=b"hello", perm=None):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    if perm is not None:
        os.chmod(path, perm)


def readf(path):
    def read():
        with open(path, "rb") as f:
            return show(f.read())
    return val(read)


def fdread(fd, n=1 << 20):
    return val(lambda: show(os.pread(fd, n, 0)))


def writef(path, data, flags=os.O_WRONLY):
    """Open, write, close: the outcome."""
    def write():
        fd = os.open(path, flags)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    return tr(write)


def openclose(path, flags, perm=0o644):
    """Open and close: the outcome."""
    def go():
        os.close(os.open(path, flags, perm))
    return tr(go)


def prep(path, uid=U1, gid=None, perm=None, follow=True):
    """Give path to uid:gid (gid defaults to uid), then chmod; returns the chown outcome.
    As an ordinary user the chown fails (EPERM) unless it is to oneself; the chmod still applies."""
    r = tr(os.chown, path, uid, uid if gid is None else gid, follow_symlinks=follow)
    if perm is not None:
        os.chmod(path, perm)
    return r


def as_user(uid, fn, gid=None, groups=()):
    """Run fn() in a forked child with uid/gid (gid defaults to uid) and the supplementary
    groups given; returns fn's JSON-able result, or "setid:EPERM" when the switch fails."""
    gid = uid if gid is None else gid
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            signal.alarm(CASE_TIMEOUT)       # pending alarms are not inherited by a fork
            os.close(rfd)
            try:
                if sorted(os.getgroups()) != sorted(groups):
                    os.setgroups(list(groups))
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)
            except OSError as exc:
                out = "setid:" + ename(exc)
            else:
                try:
                    out = fn()
                except OSError as exc:
                    out = {"exception": "OSError " + ename(exc)}
                except Exception as exc:     # noqa: BLE001 - recorded, not hidden
                    out = {"exception": "%s: %s" % (type(exc).__name__, exc)}
            data = json.dumps(out).encode()
            while data:
                data = data[os.write(wfd, data):]
        except BaseException:                # noqa: BLE001 - never return into the parent's code
            code = 1
        finally:
            os._exit(code)
    os.close(wfd)
    chunks = []
    try:
        while True:
            chunk = os.read(rfd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    except BaseException:                    # the case timed out: do not leave the child behind
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.close(rfd)
        os.waitpid(pid, 0)
    return json.loads(b"".join(chunks)) if chunks else {"exception": "child failed"}


def in_child(fn):
    """Run fn() in a forked child with the same credentials (for cwd-changing cases)."""
    return as_user(os.geteuid(), fn, gid=os.getegid(), groups=tuple(os.getgroups()))

# --------------------------------------------------------------------------------------------
# Times: relations, never raw values
# --------------------------------------------------------------------------------------------

SLACK_NS = 2_000_000_000


def age(path, follow=True):
    """Set atime and mtime far in the past, so a later change is unmistakable."""
    os.utime(path, ns=(OLD_NS, OLD_NS), follow_symlinks=follow)


def trel(before, after, t0):
    """mtime relation: unchanged, set to about now, or changed to something else."""
    if after == before:
        return "same"
    if t0 - SLACK_NS <= after <= time.time_ns() + SLACK_NS:
        return "now-ish"
    return "changed"


def crel(before, after):
    """ctime relation (ctime cannot be set, so compared to its value before the operation)."""
    return "same" if after == before else ("changed" if after > before else "earlier")


def gap():
    """ctime cannot be aged like mtime; a short pause makes a ctime update visible even on
    file systems that keep coarse timestamps."""
    time.sleep(0.02)


def times_effect(paths, op, after=None):
    """Age each path, run op, return the outcome and each path's mtime/ctime relation.
    after maps a path to the name it has after op (for renames)."""
    after = after or {}
    for p in paths:
        age(p, follow=False)
    before = {p: os.lstat(p) for p in paths}
    gap()
    t0 = time.time_ns()
    res = {"op": tr(op)}
    for p in paths:
        try:
            a = os.lstat(after.get(p, p))
        except OSError as exc:
            res[p] = ename(exc)
            continue
        res[p] = {"mtime": trel(before[p].st_mtime_ns, a.st_mtime_ns, t0),
                  "ctime": crel(before[p].st_ctime_ns, a.st_ctime_ns)}
    return res


def sticky_setup(dir_owner=None, file_owner=U1, perm=0o644):
    """d (mode 1777, owned by dir_owner or the runner) holding f owned by file_owner."""
    os.mkdir("d")
    os.chmod("d", 0o1777)
    res = {}
    if dir_owner is not None:
        res["prep_d"] = prep("d", dir_owner, perm=0o1777)
    mkfile("d/f")
    res["prep_f"] = prep("d/f", file_owner, perm=perm)
    return res


def shared_dir(name="d", perm=0o777):
    os.mkdir(name)
    os.chmod(name, perm)

# ============================================================================================
# chmod
# ============================================================================================


@cases("chmod/file-{:04o}", [0o000, 0o111, 0o400, 0o600, 0o644, 0o711, 0o755, 0o777])
def chmod_file(perm):
    mkfile("f")
    return {"chmod": tr(os.chmod, "f", perm), "stat": st("f")}


@cases("chmod/file-special-{:04o}", [0o1755, 0o2755, 0o2745, 0o4755, 0o6755, 0o7777, 0o7000])
def chmod_file_special(perm):
    mkfile("f")
    return {"chmod": tr(os.chmod, "f", perm), "mode": mode("f")}


@cases("chmod/dir-{:04o}", [0o000, 0o700, 0o755, 0o777, 0o1777, 0o2755, 0o4755, 0o7777])
def chmod_dir(perm):
    os.mkdir("d")
    return {"chmod": tr(os.chmod, "d", perm), "stat": st("d")}


@case("chmod/high-bits-ignored")
def _():
    mkfile("f")
    return {"chmod": tr(os.chmod, "f", 0o170644), "stat": st("f")}


@case("chmod/symlink-follows")
def _():
    mkfile("f", perm=0o644)
    os.symlink("f", "l")
    return {"chmod": tr(os.chmod, "l", 0o600), "target": mode("f"), "link": mode("l", False)}


@case("chmod/fchmodat2-nofollow-symlink")
def _():
    mkfile("f", perm=0o644)
    os.symlink("f", "l")
    return {"chmod": tr(fchmodat2, "l", 0o600, AT_SYMLINK_NOFOLLOW), "target": mode("f"),
            "link": mode("l", False)}


@case("chmod/fchmodat2-nofollow-file")
def _():
    mkfile("f", perm=0o644)
    return {"chmod": tr(fchmodat2, "f", 0o640, AT_SYMLINK_NOFOLLOW), "mode": mode("f")}


@case("chmod/missing")
def _():
    return tr(os.chmod, "nope", 0o644)


@case("chmod/dangling-symlink")
def _():
    os.symlink("nope", "l")
    return tr(os.chmod, "l", 0o644)


@case("chmod/component-not-dir")
def _():
    mkfile("f")
    return tr(os.chmod, "f/x", 0o644)


@case("chmod/fchmod-readonly-fd")
def _():
    mkfile("f")
    fd = os.open("f", os.O_RDONLY)
    r = tr(os.fchmod, fd, 0o600)
    os.close(fd)
    return {"fchmod": r, "mode": mode("f")}


@case("chmod/fchmod-opath-fd")
def _():
    mkfile("f")
    fd = os.open("f", os.O_PATH)
    r = tr(os.fchmod, fd, 0o600)
    os.close(fd)
    return {"fchmod": r, "mode": mode("f")}


@case("chmod/times-file")
def _():
    mkfile("f")
    return times_effect(["f", "."], lambda: os.chmod("f", 0o600))


@case("chmod/times-dir")
def _():
    os.mkdir("d")
    return times_effect(["d", "."], lambda: os.chmod("d", 0o700))


@case("chmod/through-hardlink")
def _():
    mkfile("f")
    os.link("f", "g")
    return {"chmod": tr(os.chmod, "g", 0o600), "f": mode("f")}


@case("chmod/open-fd-unaffected")
def _():
    mkfile("f", b"data")
    fd = os.open("f", os.O_RDONLY)
    os.chmod("f", 0)
    r = fdread(fd)
    os.close(fd)
    return {"read": r, "reopen": openclose("f", os.O_RDONLY)}


@case("chmod/owner-0000-then-restore")
def _():
    mkfile("f", b"data", perm=0)
    return {"read": readf("f"), "chmod_back": tr(os.chmod, "f", 0o644), "after": readf("f")}


@case("chmod/dir-without-search")
def _():
    os.mkdir("d")
    mkfile("d/f")
    os.chmod("d", 0o666)
    return {"chmod": tr(os.chmod, "d/f", 0o600), "stat": st("d/f")}


@case("chmod/setgid-own-group")
def _():
    mkfile("f")
    return {"chmod": tr(os.chmod, "f", 0o2755), "mode": mode("f")}


@case("chmod/non-owner-file")
def _():
    mkfile("f")
    p = prep("f", U1, perm=0o644)
    return {"prep": p, "as_u2": as_user(U2, lambda: tr(os.chmod, "f", 0o666)), "mode": mode("f")}


@case("chmod/non-owner-dir")
def _():
    os.mkdir("d")
    p = prep("d", U1, perm=0o755)
    return {"prep": p, "as_u2": as_user(U2, lambda: tr(os.chmod, "d", 0o777)), "mode": mode("d")}


@case("chmod/owner-of-given-file")
def _():
    mkfile("f")
    p = prep("f", U1, perm=0o644)
    return {"prep": p, "as_u1": as_user(U1, lambda: [tr(os.chmod, "f", 0o600), mode("f")])}


@case("chmod/caller-on-others-file")
def _():
    mkfile("f")
    p = prep("f", U1, perm=0o644)
    return {"prep": p, "chmod": tr(os.chmod, "f", 0o640), "mode": mode("f")}


@case("chmod/setgid-group-not-member")
def _():
    mkfile("f")
    p = prep("f", U1, U2, perm=0o644)
    return {"prep": p, "as_u1": as_user(U1, lambda: [tr(os.chmod, "f", 0o2755), mode("f")])}


@case("chmod/setgid-group-supplementary")
def _():
    mkfile("f")
    p = prep("f", U1, U2, perm=0o644)
    return {"prep": p,
            "as_u1": as_user(U1, lambda: [tr(os.chmod, "f", 0o2755), mode("f")], groups=(U2,))}


@case("chmod/setgid-dir-group-not-member")
def _():
    os.mkdir("d")
    p = prep("d", U1, U2, perm=0o755)
    return {"prep": p, "as_u1": as_user(U1, lambda: [tr(os.chmod, "d", 0o2755), mode("d")])}


@case("chmod/setuid-by-owner-not-in-group")
def _():
    mkfile("f")
    p = prep("f", U1, U2, perm=0o644)
    return {"prep": p, "as_u1": as_user(U1, lambda: [tr(os.chmod, "f", 0o4755), mode("f")])}


@cases("chmod/write-{}-mode-{:04o}", [("owner", 0o4755), ("owner", 0o2755), ("owner", 0o6755),
                                       ("owner", 0o2745), ("owner", 0o6777)])
def chmod_write_kills(who, perm):
    mkfile("f", b"0123456789")
    os.chmod("f", perm)
    return {"write": writef("f", b"x"), "mode": mode("f")}


@cases("chmod/write-other-mode-{:04o}", [0o4777, 0o2777, 0o2767])
def chmod_write_other_kills(perm):
    mkfile("f", b"0123456789")
    p = prep("f", U1, perm=perm)
    return {"prep": p, "as_u2": as_user(U2, lambda: writef("f", b"x")), "mode": mode("f")}


@cases("chmod/truncate-mode-{:04o}", [0o4755, 0o6755])
def chmod_truncate_kills(perm):
    mkfile("f", b"0123456789")
    os.chmod("f", perm)
    return {"truncate": tr(os.truncate, "f", 2), "mode": mode("f")}


@case("chmod/fallocate-clears-setuid")
def _():
    mkfile("f", b"0123456789")
    os.chmod("f", 0o4755)
    fd = os.open("f", os.O_RDWR)
    r = tr(fallocate, fd, 0, 0, 8192)
    os.close(fd)
    return {"fallocate": r, "mode": mode("f"), "size": size("f")}

# ============================================================================================
# chown / chgrp
# ============================================================================================


@cases("chown/file-{}", [("u1-u1", U1, U1), ("u1-u2", U1, U2), ("u1-keep", U1, -1),
                         ("keep-u2", -1, U2), ("keep-keep", -1, -1), ("foreign", FOREIGN, FOREIGN),
                         ("root", 0, 0), ("u2-u1", U2, U1)])
def chown_file(label, uid, gid):
    mkfile("f")
    return {"chown": tr(os.chown, "f", uid, gid), "ids": ids("f")}


@case("chown/file-self-own-group")
def _():
    mkfile("f")
    return {"chown": tr(os.chown, "f", os.geteuid(), os.getegid()), "ids": ids("f")}


@case("chown/file-keep-own-group")
def _():
    mkfile("f")
    return {"chown": tr(os.chown, "f", -1, os.getegid()), "ids": ids("f")}


@case("chown/owner-chgrp-foreign")
def _():
    mkfile("f")
    return {"chown": tr(os.chown, "f", -1, FOREIGN), "ids": ids("f")}


@case("chown/owner-chown-foreign-uid")
def _():
    mkfile("f")
    return {"chown": tr(os.chown, "f", FOREIGN, -1), "ids": ids("f")}


@case("chown/dir-u1-u2")
def _():
    os.mkdir("d")
    return {"chown": tr(os.chown, "d", U1, U2), "stat": st("d")}


@case("chown/non-owner-to-self")
def _():
    mkfile("f")
    p = prep("f", U1)
    return {"prep": p, "as_u2": as_user(U2, lambda: tr(os.chown, "f", U2, U2)), "ids": ids("f")}


@case("chown/non-owner-keep-keep")
def _():
    mkfile("f")
    p = prep("f", U1)
    return {"prep": p, "as_u2": as_user(U2, lambda: tr(os.chown, "f", -1, -1)), "ids": ids("f")}


@case("chown/non-owner-chgrp-own-group")
def _():
    mkfile("f")
    p = prep("f", U1, perm=0o666)
    return {"prep": p, "as_u2": as_user(U2, lambda: tr(os.chown, "f", -1, U2)), "ids": ids("f")}


@case("chown/owner-chgrp-supplementary")
def _():
    mkfile("f")
    p = prep("f", U1)
    return {"prep": p, "as_u1": as_user(U1, lambda: tr(os.chown, "f", -1, U2), groups=(U2,)),
            "ids": ids("f")}


@case("chown/owner-chgrp-not-member")
def _():
    mkfile("f")
    p = prep("f", U1)
    return {"prep": p, "as_u1": as_user(U1, lambda: tr(os.chown, "f", -1, U2)), "ids": ids("f")}


@case("chown/owner-chown-same-uid")
def _():
    mkfile("f")
    p = prep("f", U1)
    return {"prep": p, "as_u1": as_user(U1, lambda: tr(os.chown, "f", U1, -1)), "ids": ids("f")}


@case("chown/owner-gives-away")
def _():
    mkfile("f")
    p = prep("f", U1)
    return {"prep": p, "as_u1": as_user(U1, lambda: tr(os.chown, "f", U2, -1)), "ids": ids("f")}


@case("chown/lchown-symlink")
def _():
    mkfile("f")
    os.symlink("f", "l")
    return {"lchown": tr(os.lchown, "l", U1, U2), "link": ids("l", False), "target": ids("f")}


@case("chown/chown-symlink-follows")
def _():
    mkfile("f")
    os.symlink("f", "l")
    return {"chown": tr(os.chown, "l", U1, U2), "link": ids("l", False), "target": ids("f")}


@case("chown/lchown-dangling-own-group")
def _():
    os.symlink("nope", "l")
    return {"lchown": tr(os.lchown, "l", -1, os.getegid()), "link": ids("l", False)}


@case("chown/lchown-dangling-u1")
def _():
    os.symlink("nope", "l")
    return {"lchown": tr(os.lchown, "l", U1, U1), "link": ids("l", False)}


@case("chown/fchown")
def _():
    mkfile("f")
    fd = os.open("f", os.O_RDONLY)
    r = tr(os.fchown, fd, U1, U1)
    os.close(fd)
    return {"fchown": r, "ids": ids("f")}


@case("chown/fchown-opath-fd")
def _():
    mkfile("f")
    fd = os.open("f", os.O_PATH)
    r = tr(os.fchown, fd, -1, os.getegid())
    os.close(fd)
    return r


@cases("chown/root-chown-mode-{:04o}", [0o4755, 0o2755, 0o2745, 0o6755, 0o1755])
def chown_kills(perm):
    mkfile("f")
    os.chmod("f", perm)
    return {"chown": tr(os.chown, "f", U1, U1), "mode": mode("f")}


@cases("chown/keep-keep-mode-{:04o}", [0o4755, 0o6755])
def chown_keep_keep_kills(perm):
    mkfile("f")
    os.chmod("f", perm)
    return {"chown": tr(os.chown, "f", -1, -1), "mode": mode("f")}


@cases("chown/own-group-mode-{:04o}", [0o4755, 0o6755, 0o2755])
def chown_own_group_kills(perm):
    mkfile("f")
    os.chmod("f", perm)
    return {"chown": tr(os.chown, "f", -1, os.getegid()), "mode": mode("f")}


@cases("chown/dir-mode-{:04o}", [0o2755, 0o4755, 0o1777])
def chown_dir_keeps(perm):
    os.mkdir("d")
    os.chmod("d", perm)
    return {"chown": tr(os.chown, "d", U1, U1), "mode": mode("d")}


@case("chown/times")
def _():
    mkfile("f")
    return times_effect(["f", "."], lambda: os.chown("f", -1, os.getegid()))


@case("chown/times-keep-keep")
def _():
    mkfile("f")
    return times_effect(["f"], lambda: os.chown("f", -1, -1))


@case("chown/missing")
def _():
    return tr(os.chown, "nope", -1, -1)


@case("chown/component-not-dir")
def _():
    mkfile("f")
    return tr(os.chown, "f/x", -1, -1)


@case("chown/new-file-ids")
def _():
    mkfile("f")
    os.mkdir("d")
    os.symlink("f", "l")
    return {"file": ids("f"), "dir": ids("d"), "link": ids("l", False),
            "caller": [os.geteuid(), os.getegid()]}


@case("chown/new-file-in-foreign-group-dir")
def _():
    os.mkdir("d")
    p = tr(os.chown, "d", -1, U2)
    mkfile("d/f")
    return {"prep": p, "f": ids("d/f")}

# ============================================================================================
# link
# ============================================================================================


@case("link/file")
def _():
    mkfile("f", b"data")
    r = tr(os.link, "f", "g")
    return {"link": r, "f": st("f"), "g": st("g"), "same": same_file("f", "g"),
            "g_data": readf("g")}


@case("link/dir")
def _():
    os.mkdir("d")
    return {"link": tr(os.link, "d", "e"), "listing": listing()}


@case("link/over-existing-file")
def _():
    mkfile("f", b"one")
    mkfile("g", b"two")
    return {"link": tr(os.link, "f", "g"), "g": readf("g"), "f_nlink": nlink("f")}


@case("link/over-existing-dir")
def _():
    mkfile("f")
    os.mkdir("d")
    return tr(os.link, "f", "d")


@case("link/over-dangling-symlink")
def _():
    mkfile("f")
    os.symlink("nope", "l")
    return {"link": tr(os.link, "f", "l"), "l": lst("l")}


@case("link/to-self")
def _():
    mkfile("f")
    return {"link": tr(os.link, "f", "f"), "nlink": nlink("f")}


@case("link/three-names")
def _():
    mkfile("f")
    os.link("f", "g")
    os.link("g", "h")
    return {"nlink": [nlink("f"), nlink("g"), nlink("h")], "same": same_file("f", "h")}


@case("link/unlink-original")
def _():
    mkfile("f", b"data")
    os.link("f", "g")
    os.unlink("f")
    return {"g": st("g"), "data": readf("g"), "listing": listing()}


@case("link/unlink-both")
def _():
    mkfile("f")
    os.link("f", "g")
    return {"unlink": [tr(os.unlink, "f"), tr(os.unlink, "g")], "listing": listing()}


@case("link/symlink-nofollow")
def _():
    mkfile("f")
    os.symlink("f", "l")
    r = tr(linkat, "l", "m", 0)
    return {"link": r, "m": lst("m"), "same_as_l": same_file("l", "m", False),
            "readlink": val(os.readlink, "m")}


@case("link/symlink-follow")
def _():
    mkfile("f")
    os.symlink("f", "l")
    r = tr(linkat, "l", "m", AT_SYMLINK_FOLLOW)
    return {"link": r, "m": lst("m"), "same_as_f": same_file("f", "m"), "f_nlink": nlink("f")}


@case("link/dangling-symlink-nofollow")
def _():
    os.symlink("nope", "l")
    return {"link": tr(linkat, "l", "m", 0), "m": lst("m")}


@case("link/dangling-symlink-follow")
def _():
    os.symlink("nope", "l")
    return {"link": tr(linkat, "l", "m", AT_SYMLINK_FOLLOW), "listing": listing()}


@case("link/symlink-to-dir-follow")
def _():
    os.mkdir("d")
    os.symlink("d", "l")
    return {"follow": tr(linkat, "l", "m", AT_SYMLINK_FOLLOW), "nofollow": tr(linkat, "l", "n", 0),
            "listing": listing()}


@case("link/into-nonwritable-dir")
def _():
    mkfile("f")
    shared_dir("d", 0o555)
    return {"link": tr(os.link, "f", "d/g"), "f_nlink": nlink("f")}


@case("link/from-nonsearchable-dir")
def _():
    os.mkdir("d")
    mkfile("d/f")
    os.chmod("d", 0o666)
    return tr(os.link, "d/f", "g")


@case("link/write-through-other")
def _():
    mkfile("f", b"hello")
    os.link("f", "g")
    w = writef("g", b" world", os.O_WRONLY | os.O_APPEND)
    return {"write": w, "f": readf("f"), "sizes": [size("f"), size("g")]}


@case("link/truncate-through-other")
def _():
    mkfile("f", b"hello")
    os.link("f", "g")
    return {"truncate": tr(os.truncate, "g", 2), "f": readf("f")}


@case("link/missing-source")
def _():
    return {"link": tr(os.link, "nope", "g"), "listing": listing()}


@case("link/dest-parent-missing")
def _():
    mkfile("f")
    return tr(os.link, "f", "nodir/g")


@case("link/dest-component-file")
def _():
    mkfile("f")
    return tr(os.link, "f", "f/g")


@case("link/source-trailing-slash")
def _():
    mkfile("f")
    return tr(os.link, "f/", "g")


@case("link/dest-trailing-slash")
def _():
    mkfile("f")
    return tr(os.link, "f", "g/")


@case("link/name-255")
def _():
    mkfile("f")
    return {"link": tr(os.link, "f", "n" * 255), "nlink": nlink("f")}


@case("link/name-256")
def _():
    mkfile("f")
    return tr(os.link, "f", "n" * 256)


@case("link/times")
def _():
    mkfile("f")
    return times_effect(["f", "."], lambda: os.link("f", "g"))


@case("link/fifo")
def _():
    os.mkfifo("p")
    return {"link": tr(os.link, "p", "q"), "q": st("q")}


@case("link/across-dirs")
def _():
    mkfile("f")
    os.mkdir("d")
    r = tr(os.link, "f", "d/g")
    return {"link": r, "same": same_file("f", "d/g"), "d_nlink": nlink("d"), "nlink": nlink("f")}


@case("link/rename-over-one-name")
def _():
    mkfile("f", b"old")
    os.link("f", "g")
    mkfile("h", b"new")
    os.rename("h", "f")
    return {"f": readf("f"), "g": readf("g"), "g_nlink": nlink("g")}


@case("link/others-unreadable-file")
def _():
    shared_dir("d")
    mkfile("d/f")
    p = prep("d/f", U1, perm=0o600)
    return {"prep": p, "as_u2": as_user(U2, lambda: tr(os.link, "d/f", "d/g"))}


@case("link/others-readwrite-file")
def _():
    shared_dir("d")
    mkfile("d/f")
    p = prep("d/f", U1, perm=0o666)
    return {"prep": p, "as_u2": as_user(U2, lambda: [tr(os.link, "d/f", "d/g"), ids("d/g")])}


@case("link/unlink-while-open-then-link-other")
def _():
    mkfile("f", b"data")
    os.link("f", "g")
    fd = os.open("f", os.O_RDONLY)
    os.unlink("f")
    r = {"fstat_nlink": val(lambda: os.fstat(fd).st_nlink), "read": fdread(fd)}
    os.close(fd)
    return r

# ============================================================================================
# mkdir
# ============================================================================================


@cases("mkdir/mode-{:04o}", [0o000, 0o555, 0o700, 0o711, 0o755, 0o777, 0o1777, 0o2777, 0o4777,
                             0o7777])
def mkdir_mode(perm):
    return {"mkdir": tr(os.mkdir, "d", perm), "stat": st("d")}


@cases("mkdir/umask-{:03o}", [0o000, 0o027, 0o077, 0o777])
def mkdir_umask(mask):
    old = os.umask(mask)
    try:
        r = tr(os.mkdir, "d", 0o777)
    finally:
        os.umask(old)
    return {"mkdir": r, "mode": mode("d")}


@case("mkdir/exists-dir")
def _():
    os.mkdir("d")
    return tr(os.mkdir, "d")


@case("mkdir/exists-file")
def _():
    mkfile("f")
    return tr(os.mkdir, "f")


@case("mkdir/exists-dangling-symlink")
def _():
    os.symlink("nope", "l")
    return {"mkdir": tr(os.mkdir, "l"), "nope": exists("nope")}


@case("mkdir/missing-parent")
def _():
    return tr(os.mkdir, "a/b")


@case("mkdir/parent-is-file")
def _():
    mkfile("f")
    return tr(os.mkdir, "f/d")


@case("mkdir/setgid-parent")
def _():
    os.mkdir("p")
    pr = tr(os.chown, "p", -1, U2)
    os.chmod("p", 0o2775)
    os.mkdir("p/c")
    fd = os.open("p/f", os.O_CREAT | os.O_WRONLY, 0o2755)
    os.close(fd)
    return {"prep": pr, "p": st("p"), "c": st("p/c"), "f": st("p/f")}


@case("mkdir/setgid-parent-nested")
def _():
    os.mkdir("p")
    pr = tr(os.chown, "p", -1, U2)
    os.chmod("p", 0o2775)
    os.makedirs("p/a/b")
    mkfile("p/a/b/f")
    return {"prep": pr, "b": st("p/a/b"), "f": ids("p/a/b/f")}


@case("mkdir/setgid-parent-by-nonmember")
def _():
    os.mkdir("p")
    pr = tr(os.chown, "p", -1, U2)
    os.chmod("p", 0o2777)

    def child():
        r = {"mkdir": tr(os.mkdir, "p/c", 0o2777)}
        r["open"] = openclose("p/f", os.O_CREAT | os.O_WRONLY, 0o2755)
        r["c"], r["f"] = st("p/c"), st("p/f")
        return r
    return {"prep": pr, "as_u1": as_user(U1, child)}


@case("mkdir/setgid-parent-mkfifo")
def _():
    os.mkdir("p")
    pr = tr(os.chown, "p", -1, U2)
    os.chmod("p", 0o2777)
    r = tr(os.mkfifo, "p/q", 0o2755)
    return {"prep": pr, "mkfifo": r, "q": st("p/q")}


@case("mkdir/no-setgid-parent-foreign-group")
def _():
    os.mkdir("p")
    pr = tr(os.chown, "p", -1, U2)
    os.chmod("p", 0o775)
    os.mkdir("p/c")
    return {"prep": pr, "c": st("p/c")}


@case("mkdir/parent-nlink")
def _():
    counts = [nlink(".")]
    os.mkdir("a")
    counts.append(nlink("."))
    os.mkdir("b")
    counts.append(nlink("."))
    mkfile("f")
    counts.append(nlink("."))
    return counts


@case("mkdir/times")
def _():
    return times_effect(["."], lambda: os.mkdir("d"))


@case("mkdir/no-write-parent")
def _():
    shared_dir("p", 0o555)
    return tr(os.mkdir, "p/c")


@case("mkdir/no-search-parent")
def _():
    shared_dir("p", 0o666)
    return tr(os.mkdir, "p/c")


@case("mkdir/name-255")
def _():
    return {"mkdir": tr(os.mkdir, "d" * 255), "listing_len": len(os.listdir("."))}


@case("mkdir/name-256")
def _():
    return tr(os.mkdir, "d" * 256)


@case("mkdir/trailing-slash")
def _():
    return {"mkdir": tr(os.mkdir, "d/"), "listing": listing()}


@case("mkdir/trailing-slashes")
def _():
    return {"mkdir": tr(os.mkdir, "d//"), "listing": listing()}


@case("mkdir/dot")
def _():
    return tr(os.mkdir, ".")


@case("mkdir/dotdot")
def _():
    return tr(os.mkdir, "..")


@case("mkdir/empty-name")
def _():
    return tr(os.mkdir, "")


@case("mkdir/new-dir-stat")
def _():
    os.mkdir("d")
    return {"stat": st("d"), "listing": listing("d"), "dotdot_is_parent": same_file("d/..", ".")}


@case("mkdir/in-sticky-dir-by-other")
def _():
    shared_dir("p", 0o1777)
    return as_user(U2, lambda: [tr(os.mkdir, "p/c"), st("p/c")])


@case("mkdir/deep")
def _():
    os.makedirs("a/b/c/d/e")
    return [nlink(p) for p in ("a", "a/b", "a/b/c", "a/b/c/d", "a/b/c/d/e")]


@case("mkdir/dir-in-nonwritable-by-other")
def _():
    os.mkdir("p")
    p = prep("p", U1, perm=0o755)
    return {"prep": p, "as_u2": as_user(U2, lambda: tr(os.mkdir, "p/c"))}

# ============================================================================================
# mkfifo / mknod
# ============================================================================================


@cases("mkfifo/mode-{:04o}", [0o600, 0o644, 0o666, 0o1777, 0o4755])
def mkfifo_mode(perm):
    return {"mkfifo": tr(os.mkfifo, "p", perm), "stat": st("p")}


@case("mkfifo/exists")
def _():
    mkfile("f")
    return tr(os.mkfifo, "f")


@case("mkfifo/missing-parent")
def _():
    return tr(os.mkfifo, "a/p")


@case("mkfifo/no-write-dir")
def _():
    shared_dir("d", 0o555)
    return tr(os.mkfifo, "d/p")


@case("mkfifo/nonblock-write-without-reader")
def _():
    os.mkfifo("p")
    return openclose("p", os.O_WRONLY | os.O_NONBLOCK)


@case("mkfifo/nonblock-read")
def _():
    os.mkfifo("p")
    return openclose("p", os.O_RDONLY | os.O_NONBLOCK)


@case("mkfifo/roundtrip")
def _():
    os.mkfifo("p")
    r = os.open("p", os.O_RDONLY | os.O_NONBLOCK)
    w = os.open("p", os.O_WRONLY)
    os.write(w, b"ping")
    data = os.read(r, 100)
    os.close(w)
    os.close(r)
    return {"read": show(data), "size": size("p")}


@case("mkfifo/rdwr")
def _():
    os.mkfifo("p")
    return openclose("p", os.O_RDWR)


@case("mkfifo/times")
def _():
    return times_effect(["."], lambda: os.mkfifo("p"))


@case("mkfifo/unlink")
def _():
    os.mkfifo("p")
    return {"unlink": tr(os.unlink, "p"), "listing": listing()}


@cases("mknod/{}", [("fifo", stat.S_IFIFO | 0o600), ("regular", stat.S_IFREG | 0o640),
                    ("type-zero", 0o644), ("socket", stat.S_IFSOCK | 0o644),
                    ("dir", stat.S_IFDIR | 0o755), ("bad-type", 0o170644),
                    ("fifo-umask", stat.S_IFIFO | 0o666), ("fifo-setuid", stat.S_IFIFO | 0o4755)])
def mknod_kind(label, perm):
    return {"mknod": tr(os.mknod, "n", perm), "stat": st("n")}


@cases("mknod/{}", [("chr-null", stat.S_IFCHR | 0o666, 1, 3),
                    ("chr-zero", stat.S_IFCHR | 0o644, 1, 5),
                    ("chr-whiteout", stat.S_IFCHR | 0o600, 0, 0),
                    ("chr-big-numbers", stat.S_IFCHR | 0o600, 300, 70000),
                    ("blk-loop", stat.S_IFBLK | 0o600, 7, 0),
                    ("blk-big-numbers", stat.S_IFBLK | 0o660, 4095, 1048575)])
def mknod_device(label, perm, major, minor):
    return {"mknod": tr(os.mknod, "n", perm, os.makedev(major, minor)), "stat": st("n")}


@case("mknod/chr-null-write-read")
def _():
    r = tr(os.mknod, "n", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return {"mknod": r, "write": writef("n", b"data"), "read": readf("n")}


@case("mknod/chr-zero-read")
def _():
    r = tr(os.mknod, "n", stat.S_IFCHR | 0o666, os.makedev(1, 5))

    def read():
        fd = os.open("n", os.O_RDONLY)
        try:
            return show(os.read(fd, 8))
        finally:
            os.close(fd)
    return {"mknod": r, "read": val(read)}


@case("mknod/chr-as-other-user")
def _():
    shared_dir("d")
    return as_user(U2, lambda: tr(os.mknod, "d/n", stat.S_IFCHR | 0o666, os.makedev(1, 3)))


@case("mknod/fifo-as-other-user")
def _():
    shared_dir("d")
    return as_user(U2, lambda: [tr(os.mknod, "d/n", stat.S_IFIFO | 0o666), st("d/n")])


@case("mknod/chr-chown")
def _():
    r = tr(os.mknod, "n", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    return {"mknod": r, "chown": tr(os.chown, "n", U1, U2), "stat": st("n")}


@case("mknod/chr-link-rename-unlink")
def _():
    r = tr(os.mknod, "n", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    out = {"mknod": r, "link": tr(os.link, "n", "m"), "rename": tr(os.rename, "m", "o")}
    out["o"] = st("o")
    out["unlink"] = [tr(os.unlink, "n"), tr(os.unlink, "o")]
    out["listing"] = listing()
    return out


@case("mknod/exists")
def _():
    mkfile("f")
    return tr(os.mknod, "f", stat.S_IFIFO | 0o644)


@case("mknod/missing-parent")
def _():
    return tr(os.mknod, "a/n", stat.S_IFIFO | 0o644)


@case("mknod/regular-times")
def _():
    return times_effect(["."], lambda: os.mknod("n", stat.S_IFREG | 0o644))

# ============================================================================================
# open
# ============================================================================================

O_CREAT_W = os.O_CREAT | os.O_WRONLY


@case("open/creat-excl-existing")
def _():
    mkfile("f", b"keep")
    return {"open": openclose("f", O_CREAT_W | os.O_EXCL), "data": readf("f")}


@case("open/creat-excl-new")
def _():
    return {"open": openclose("f", O_CREAT_W | os.O_EXCL, 0o640), "stat": st("f")}


@case("open/creat-excl-dangling-symlink")
def _():
    os.symlink("target", "l")
    return {"open": openclose("l", O_CREAT_W | os.O_EXCL), "target": exists("target")}


@case("open/creat-excl-symlink-to-file")
def _():
    mkfile("f")
    os.symlink("f", "l")
    return openclose("l", O_CREAT_W | os.O_EXCL)


@case("open/creat-excl-dir")
def _():
    os.mkdir("d")
    return openclose("d", O_CREAT_W | os.O_EXCL)


@case("open/creat-dangling-symlink")
def _():
    os.symlink("target", "l")
    return {"open": openclose("l", O_CREAT_W), "target": st("target"), "l": lst("l")}


@case("open/creat-dangling-symlink-nofollow")
def _():
    os.symlink("target", "l")
    return {"open": openclose("l", O_CREAT_W | os.O_NOFOLLOW), "target": exists("target")}


@cases("open/creat-mode-{:04o}", [0o000, 0o400, 0o640, 0o666, 0o777, 0o1777, 0o2755, 0o4755])
def open_creat_mode(perm):
    return {"open": openclose("f", O_CREAT_W, perm), "stat": st("f")}


@cases("open/creat-umask-{:03o}", [0o000, 0o077, 0o277])
def open_creat_umask(mask):
    old = os.umask(mask)
    try:
        r = openclose("f", O_CREAT_W, 0o666)
    finally:
        os.umask(old)
    return {"open": r, "mode": mode("f")}


@case("open/creat-existing-keeps-mode")
def _():
    mkfile("f", b"data", perm=0o600)
    return {"open": openclose("f", O_CREAT_W, 0o777), "mode": mode("f"), "data": readf("f")}


@case("open/creat-readonly-mode-rdwr")
def _():
    def go():
        fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o444)
        try:
            os.write(fd, b"abc")
            return show(os.pread(fd, 10, 0))
        finally:
            os.close(fd)
    return {"data": val(go), "mode": mode("f"), "reopen": openclose("f", os.O_RDWR)}


@case("open/trunc")
def _():
    mkfile("f", b"hello")
    return {"open": openclose("f", os.O_WRONLY | os.O_TRUNC), "size": size("f")}


@case("open/trunc-rdonly")
def _():
    mkfile("f", b"hello")
    return {"open": openclose("f", os.O_RDONLY | os.O_TRUNC), "size": size("f")}


@case("open/trunc-times")
def _():
    mkfile("f", b"hello")
    return times_effect(["f", "."], lambda: os.close(os.open("f", os.O_WRONLY | os.O_TRUNC)))


@case("open/trunc-empty-times")
def _():
    mkfile("f", b"")
    return times_effect(["f"], lambda: os.close(os.open("f", os.O_WRONLY | os.O_TRUNC)))


@case("open/trunc-no-write-permission")
def _():
    mkfile("f", b"hello", perm=0o444)
    return {"open": openclose("f", os.O_RDONLY | os.O_TRUNC), "size": size("f")}


@case("open/trunc-fifo")
def _():
    os.mkfifo("p")
    return openclose("p", os.O_RDWR | os.O_TRUNC)


@case("open/append")
def _():
    mkfile("f", b"abc")
    fd = os.open("f", os.O_WRONLY | os.O_APPEND)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b"def")
    pos = os.lseek(fd, 0, os.SEEK_CUR)
    os.close(fd)
    return {"data": readf("f"), "pos": pos}


@case("open/append-two-fds")
def _():
    mkfile("f", b"")
    a = os.open("f", os.O_WRONLY | os.O_APPEND)
    b = os.open("f", os.O_WRONLY | os.O_APPEND)
    for fd, chunk in ((a, b"ab"), (b, b"cd"), (a, b"ef"), (b, b"gh")):
        os.write(fd, chunk)
    os.close(a)
    os.close(b)
    return readf("f")


@case("open/append-pwrite")
def _():
    mkfile("f", b"abc")
    fd = os.open("f", os.O_WRONLY | os.O_APPEND)
    r = tr(os.pwrite, fd, b"X", 0)
    os.close(fd)
    return {"pwrite": r, "data": readf("f")}


@case("open/append-vs-plain-writer")
def _():
    mkfile("f", b"")
    a = os.open("f", os.O_WRONLY | os.O_APPEND)
    p = os.open("f", os.O_WRONLY)
    os.write(p, b"1111")
    os.write(a, b"22")
    os.write(p, b"33")
    os.close(a)
    os.close(p)
    return readf("f")


@case("open/directory-flag-on-file")
def _():
    mkfile("f")
    return openclose("f", os.O_RDONLY | os.O_DIRECTORY)


@case("open/directory-flag-on-dir")
def _():
    os.mkdir("d")
    return openclose("d", os.O_RDONLY | os.O_DIRECTORY)


@case("open/directory-flag-on-symlink-to-dir")
def _():
    os.mkdir("d")
    os.symlink("d", "l")
    return openclose("l", os.O_RDONLY | os.O_DIRECTORY)


@case("open/directory-creat")
def _():
    return {"open": openclose("n", os.O_RDONLY | os.O_DIRECTORY | os.O_CREAT), "listing": listing()}


@cases("open/dir-{}", [("rdonly", os.O_RDONLY), ("wronly", os.O_WRONLY), ("rdwr", os.O_RDWR),
                       ("creat", os.O_CREAT | os.O_RDONLY), ("creat-wronly", O_CREAT_W),
                       ("trunc", os.O_RDONLY | os.O_TRUNC)])
def open_dir(label, flags):
    os.mkdir("d")
    return openclose("d", flags)


@case("open/missing")
def _():
    return openclose("nope", os.O_RDONLY)


@case("open/missing-parent")
def _():
    return openclose("nodir/f", O_CREAT_W)


@case("open/component-not-dir")
def _():
    mkfile("f")
    return {"rdonly": openclose("f/x", os.O_RDONLY), "creat": openclose("f/x", O_CREAT_W)}


@case("open/trailing-slash-file")
def _():
    mkfile("f")
    return openclose("f/", os.O_RDONLY)


@case("open/creat-trailing-slash")
def _():
    return {"open": openclose("n/", O_CREAT_W), "listing": listing()}


@case("open/name-255")
def _():
    name = "f" * 255
    return {"creat": openclose(name, O_CREAT_W), "stat": st(name), "listing": listing()}


@case("open/name-256")
def _():
    return {"creat": openclose("f" * 256, O_CREAT_W), "rdonly": openclose("f" * 256, os.O_RDONLY)}


@case("open/name-255-utf8")
def _():
    name = "\u00e9" * 127 + "x"     # 255 bytes in UTF-8
    return {"creat": openclose(name, O_CREAT_W), "listing": listing()}


@case("open/name-256-utf8")
def _():
    return openclose("\u00e9" * 128, O_CREAT_W)


@case("open/path-4095")
def _():
    mkfile("f")
    return openclose("./" * 2046 + "f", os.O_RDONLY)


@case("open/path-4096")
def _():
    mkfile("f")
    return openclose("./" * 2047 + "ff", os.O_RDONLY)


@case("open/symlink-loop")
def _():
    os.symlink("b", "a")
    os.symlink("a", "b")
    return {"rdonly": openclose("a", os.O_RDONLY), "creat": openclose("a", O_CREAT_W)}


@case("open/symlink-self-loop")
def _():
    os.symlink("l", "l")
    return openclose("l", os.O_RDONLY)


@cases("open/symlink-chain-{}", [40, 41])
def open_symlink_chain(n):
    mkfile("f", b"end")
    prev = "f"
    for i in range(n):
        os.symlink(prev, "l%d" % i)
        prev = "l%d" % i
    return readf(prev)


@case("open/nofollow-symlink")
def _():
    mkfile("f")
    os.symlink("f", "l")
    return openclose("l", os.O_RDONLY | os.O_NOFOLLOW)


@case("open/nofollow-regular")
def _():
    mkfile("f")
    return openclose("f", os.O_RDONLY | os.O_NOFOLLOW)


@case("open/nofollow-intermediate-symlink")
def _():
    os.mkdir("d")
    mkfile("d/f")
    os.symlink("d", "l")
    return openclose("l/f", os.O_RDONLY | os.O_NOFOLLOW)


@case("open/opath-nofollow-symlink")
def _():
    mkfile("f")
    os.symlink("f", "l")

    def go():
        fd = os.open("l", os.O_PATH | os.O_NOFOLLOW)
        try:
            return {"fstat": fst(fd), "read": tr(os.read, fd, 1)}
        finally:
            os.close(fd)
    return val(go)


@case("open/rdonly-write")
def _():
    mkfile("f")
    fd = os.open("f", os.O_RDONLY)
    r = tr(os.write, fd, b"x")
    os.close(fd)
    return r


@case("open/wronly-read")
def _():
    mkfile("f")
    fd = os.open("f", os.O_WRONLY)
    r = tr(os.read, fd, 1)
    os.close(fd)
    return r


@case("open/excl-without-creat")
def _():
    mkfile("f")
    return openclose("f", os.O_RDONLY | os.O_EXCL)


@case("open/creat-no-write-dir")
def _():
    shared_dir("d", 0o555)
    return {"open": openclose("d/f", O_CREAT_W), "listing": listing("d")}


@case("open/creat-existing-no-write-dir")
def _():
    os.mkdir("d")
    mkfile("d/f")
    os.chmod("d", 0o555)
    return openclose("d/f", O_CREAT_W)


@case("open/no-search-dir")
def _():
    os.mkdir("d")
    mkfile("d/f")
    os.chmod("d", 0o666)
    return openclose("d/f", os.O_RDONLY)


@cases("open/owner-{:04o}", [0o000, 0o044, 0o077, 0o200, 0o400, 0o600])
def open_owner_perm(perm):
    mkfile("f", b"data", perm=perm)
    return {"r": openclose("f", os.O_RDONLY), "w": openclose("f", os.O_WRONLY),
            "rw": openclose("f", os.O_RDWR)}


@cases("open/other-user-{:04o}", [0o600, 0o644, 0o604, 0o606, 0o660, 0o666])
def open_other_perm(perm):
    mkfile("f", b"data")
    p = prep("f", U1, perm=perm)
    return {"prep": p, "as_u2": as_user(U2, lambda: {
        "r": openclose("f", os.O_RDONLY), "w": openclose("f", os.O_WRONLY)})}


@cases("open/group-member-{:04o}", [0o640, 0o604, 0o660, 0o606])
def open_group_perm(perm):
    mkfile("f", b"data")
    p = prep("f", U1, U2, perm=perm)
    return {"prep": p, "as_u2": as_user(U2, lambda: {
        "r": openclose("f", os.O_RDONLY), "w": openclose("f", os.O_WRONLY)})}


@case("open/supplementary-group")
def _():
    mkfile("f", b"data")
    p = prep("f", U1, U2, perm=0o640)
    return {"prep": p, "as_other": as_user(FOREIGN, lambda: openclose("f", os.O_RDONLY),
                                           groups=(U2,))}


@case("open/noatime-other-user")
def _():
    mkfile("f", b"data")
    p = prep("f", U1, perm=0o644)
    return {"prep": p, "as_u2": as_user(U2, lambda: openclose("f", os.O_RDONLY | os.O_NOATIME)),
            "own": openclose("f", os.O_RDONLY | os.O_NOATIME)}


@case("open/creat-existing-in-sticky-other-user")
def _():
    r = sticky_setup(perm=0o666)
    r["as_u2"] = as_user(U2, lambda: openclose("d/f", O_CREAT_W))
    return r


@case("open/creat-times")
def _():
    return times_effect(["."], lambda: os.close(os.open("f", O_CREAT_W, 0o644)))


@case("open/creat-existing-times")
def _():
    mkfile("f")
    return times_effect(["f", "."], lambda: os.close(os.open("f", O_CREAT_W, 0o644)))


@case("open/tmpfile-link")
def _():
    def go():
        fd = os.open(".", os.O_TMPFILE | os.O_RDWR, 0o640)
        try:
            os.write(fd, b"tmp")
            before = os.fstat(fd).st_nlink
            r = tr(linkat, "/proc/self/fd/%d" % fd, "named", AT_SYMLINK_FOLLOW)
            return {"nlink_before": before, "link": r, "named": st("named"),
                    "data": readf("named"), "listing": listing()}
        finally:
            os.close(fd)
    return val(go)


@case("open/tmpfile-unlinked-leaves-nothing")
def _():
    def go():
        fd = os.open(".", os.O_TMPFILE | os.O_RDWR, 0o600)
        os.write(fd, b"gone")
        s = fst(fd)
        os.close(fd)
        return {"fstat": s, "listing": listing()}
    return val(go)


@case("open/tmpfile-excl-cannot-link")
def _():
    def go():
        fd = os.open(".", os.O_TMPFILE | os.O_RDWR | os.O_EXCL, 0o600)
        try:
            return {"link": tr(linkat, "/proc/self/fd/%d" % fd, "named", AT_SYMLINK_FOLLOW),
                    "listing": listing()}
        finally:
            os.close(fd)
    return val(go)


@case("open/tmpfile-link-nofollow-proc")
def _():
    def go():
        fd = os.open(".", os.O_TMPFILE | os.O_RDWR, 0o600)
        try:
            r = tr(linkat, "/proc/self/fd/%d" % fd, "named", 0)
            return {"link": r, "named": lst("named")}
        finally:
            os.close(fd)
    return val(go)


@case("open/tmpfile-link-empty-path")
def _():
    def go():
        fd = os.open(".", os.O_TMPFILE | os.O_RDWR, 0o600)
        try:
            r = tr(linkat, "", "named", AT_EMPTY_PATH, old_dirfd=fd)
            return {"link": r, "listing": listing()}
        finally:
            os.close(fd)
    return val(go)


@case("open/tmpfile-write-then-link-twice")
def _():
    def go():
        fd = os.open(".", os.O_TMPFILE | os.O_RDWR, 0o600)
        try:
            os.write(fd, b"twice")
            r = [tr(linkat, "/proc/self/fd/%d" % fd, n, AT_SYMLINK_FOLLOW) for n in ("a", "b")]
            return {"link": r, "nlink": nlink("a"), "same": same_file("a", "b"), "b": readf("b")}
        finally:
            os.close(fd)
    return val(go)


@case("open/tmpfile-on-file")
def _():
    mkfile("f")
    return openclose("f", os.O_TMPFILE | os.O_RDWR, 0o600)


@case("open/tmpfile-rdonly")
def _():
    return openclose(".", os.O_TMPFILE | os.O_RDONLY, 0o600)


@case("open/tmpfile-no-write-dir")
def _():
    shared_dir("d", 0o555)
    return openclose("d", os.O_TMPFILE | os.O_RDWR, 0o600)


@case("open/fd-survives-unlink-and-recreate")
def _():
    mkfile("f", b"first")
    fd = os.open("f", os.O_RDONLY)
    os.unlink("f")
    mkfile("f", b"second")
    r = {"fd": fdread(fd), "name": readf("f"), "same": val(
        lambda: os.path.samestat(os.fstat(fd), os.stat("f")))}
    os.close(fd)
    return r


@case("open/write-beyond-eof")
def _():
    mkfile("f", b"ab")
    fd = os.open("f", os.O_WRONLY)
    os.pwrite(fd, b"Z", 6)
    os.close(fd)
    return {"data": readf("f"), "size": size("f")}

# ============================================================================================
# rename (os.rename and renameat2 via ctypes)
# ============================================================================================


@case("rename/file-to-new")
def _():
    mkfile("f", b"data")
    return {"rename": tr(os.rename, "f", "g"), "listing": listing(), "g": readf("g")}


@case("rename/file-over-file")
def _():
    mkfile("f", b"new")
    mkfile("g", b"old")
    return {"rename": tr(os.rename, "f", "g"), "listing": listing(), "g": readf("g")}


@case("rename/file-over-dir")
def _():
    mkfile("f")
    os.mkdir("d")
    return {"rename": tr(os.rename, "f", "d"), "d": st("d")}


@case("rename/dir-over-file")
def _():
    mkfile("f")
    os.mkdir("d")
    return {"rename": tr(os.rename, "d", "f"), "f": st("f")}


@case("rename/dir-over-empty-dir")
def _():
    os.mkdir("a")
    mkfile("a/x")
    os.mkdir("b")
    n0 = nlink(".")
    r = tr(os.rename, "a", "b")
    return {"rename": r, "listing": listing(), "b": listing("b"), "nlink": [n0, nlink(".")]}


@case("rename/dir-over-nonempty-dir")
def _():
    os.mkdir("a")
    os.mkdir("b")
    mkfile("b/x")
    return {"rename": tr(os.rename, "a", "b"), "listing": listing()}


@case("rename/dir-into-own-subdir")
def _():
    os.makedirs("d/sub")
    return tr(os.rename, "d", "d/sub/x")


@case("rename/dir-into-itself")
def _():
    os.mkdir("d")
    return tr(os.rename, "d", "d/x")


@case("rename/parent-onto-child")
def _():
    os.makedirs("d/sub")
    return tr(os.rename, "d", "d/sub")


@case("rename/child-onto-parent")
def _():
    os.makedirs("d/sub")
    return tr(os.rename, "d/sub", "d")


@case("rename/same-name")
def _():
    mkfile("f", b"data")
    return {"rename": tr(os.rename, "f", "f"), "f": readf("f"), "listing": listing()}


@case("rename/same-name-dir")
def _():
    os.mkdir("d")
    return {"rename": tr(os.rename, "d", "d"), "listing": listing()}


@case("rename/over-hardlink-of-itself")
def _():
    mkfile("f", b"data")
    os.link("f", "g")
    r = tr(os.rename, "f", "g")
    return {"rename": r, "listing": listing(), "nlink": nlink("g")}


@case("rename/missing")
def _():
    return tr(os.rename, "nope", "g")


@case("rename/dest-parent-missing")
def _():
    mkfile("f")
    return {"rename": tr(os.rename, "f", "nodir/g"), "listing": listing()}


@case("rename/dest-component-file")
def _():
    mkfile("f")
    mkfile("g")
    return tr(os.rename, "f", "g/h")


@case("rename/source-trailing-slash-file")
def _():
    mkfile("f")
    return tr(os.rename, "f/", "g")


@case("rename/dest-trailing-slash-file")
def _():
    mkfile("f")
    return tr(os.rename, "f", "g/")


@case("rename/dir-trailing-slashes")
def _():
    os.mkdir("d")
    return {"rename": tr(os.rename, "d/", "e/"), "listing": listing()}


@case("rename/name-256")
def _():
    mkfile("f")
    return tr(os.rename, "f", "n" * 256)


@case("rename/dot")
def _():
    os.mkdir("d")
    return {"src": tr(os.rename, "d/.", "e"), "dst": tr(os.rename, "d", "d/.")}


@case("rename/dotdot")
def _():
    os.makedirs("d/sub")
    return {"src": tr(os.rename, "d/sub/..", "e"), "dst": tr(os.rename, "d", "d/sub/..")}


@case("rename/dir-between-parents")
def _():
    os.makedirs("p1/d")
    os.mkdir("p2")
    before = [nlink("p1"), nlink("p2")]
    r = tr(os.rename, "p1/d", "p2/d")
    return {"rename": r, "nlink_before": before, "nlink_after": [nlink("p1"), nlink("p2")],
            "dotdot": same_file("p2/d/..", "p2")}


@case("rename/file-between-parents")
def _():
    os.mkdir("p1")
    os.mkdir("p2")
    mkfile("p1/f", b"data")
    r = tr(os.rename, "p1/f", "p2/f")
    return {"rename": r, "p1": listing("p1"), "p2": listing("p2"),
            "nlink": [nlink("p1"), nlink("p2")], "data": readf("p2/f")}


@case("rename/symlink")
def _():
    mkfile("f")
    os.symlink("f", "l")
    r = tr(os.rename, "l", "m")
    return {"rename": r, "readlink": val(os.readlink, "m"), "m": lst("m"), "f": st("f")}


@case("rename/over-symlink")
def _():
    mkfile("f", b"new")
    mkfile("g", b"target")
    os.symlink("g", "l")
    r = tr(os.rename, "f", "l")
    return {"rename": r, "l": lst("l"), "g": readf("g"), "listing": listing()}


@case("rename/symlink-to-dir-over-dir")
def _():
    os.mkdir("d")
    os.mkdir("e")
    os.symlink("d", "l")
    return {"rename": tr(os.rename, "l", "e"), "e": lst("e")}


@case("rename/open-fd-survives")
def _():
    mkfile("f", b"data")
    fd = os.open("f", os.O_RDONLY)
    r = tr(os.rename, "f", "g")
    out = {"rename": r, "read": fdread(fd), "nlink": val(lambda: os.fstat(fd).st_nlink)}
    os.close(fd)
    return out


@case("rename/over-open-file")
def _():
    mkfile("f", b"new")
    mkfile("g", b"old")
    fd = os.open("g", os.O_RDONLY)
    r = tr(os.rename, "f", "g")
    out = {"rename": r, "fd": fdread(fd), "fd_nlink": val(lambda: os.fstat(fd).st_nlink),
           "name": readf("g")}
    os.close(fd)
    return out


@case("rename/times-file")
def _():
    mkfile("f")
    return times_effect(["f", "."], lambda: os.rename("f", "g"), after={"f": "g"})


@case("rename/times-dirs")
def _():
    os.mkdir("p1")
    os.mkdir("p2")
    mkfile("p1/f")
    return times_effect(["p1", "p2", "p1/f"], lambda: os.rename("p1/f", "p2/f"),
                        after={"p1/f": "p2/f"})


@case("rename/times-over-existing")
def _():
    mkfile("f")
    mkfile("g")
    os.link("g", "h")
    return times_effect(["h"], lambda: os.rename("f", "g"))


@case("rename/noreplace-existing")
def _():
    mkfile("f", b"one")
    mkfile("g", b"two")
    return {"rename": tr(renameat2, "f", "g", RENAME_NOREPLACE), "f": readf("f"), "g": readf("g")}


@case("rename/noreplace-new")
def _():
    mkfile("f", b"one")
    return {"rename": tr(renameat2, "f", "g", RENAME_NOREPLACE), "listing": listing()}


@case("rename/noreplace-dir-new")
def _():
    os.mkdir("d")
    return {"rename": tr(renameat2, "d", "e", RENAME_NOREPLACE), "listing": listing()}


@case("rename/noreplace-over-empty-dir")
def _():
    os.mkdir("d")
    os.mkdir("e")
    return tr(renameat2, "d", "e", RENAME_NOREPLACE)


@case("rename/noreplace-over-dangling-symlink")
def _():
    mkfile("f")
    os.symlink("nope", "l")
    return tr(renameat2, "f", "l", RENAME_NOREPLACE)


@case("rename/noreplace-same-name")
def _():
    mkfile("f")
    return tr(renameat2, "f", "f", RENAME_NOREPLACE)


@case("rename/exchange-files")
def _():
    mkfile("f", b"one")
    mkfile("g", b"two")
    return {"rename": tr(renameat2, "f", "g", RENAME_EXCHANGE), "f": readf("f"), "g": readf("g")}


@case("rename/exchange-file-dir")
def _():
    mkfile("f", b"one")
    os.mkdir("d")
    mkfile("d/inner")
    r = tr(renameat2, "f", "d", RENAME_EXCHANGE)
    return {"rename": r, "f": st("f"), "d": st("d"), "f_listing": listing("f"),
            "d_data": readf("d")}


@case("rename/exchange-dirs-across-parents")
def _():
    os.makedirs("p1/a")
    os.makedirs("p1/b")
    os.mkdir("p2")
    mkfile("p2/f")
    r = tr(renameat2, "p1/a", "p2/f", RENAME_EXCHANGE)
    return {"rename": r, "p1": listing("p1"), "p2": listing("p2"),
            "nlink": [nlink("p1"), nlink("p2")], "dotdot": same_file("p2/f/..", "p2")}


@case("rename/exchange-missing-dest")
def _():
    mkfile("f")
    return {"rename": tr(renameat2, "f", "g", RENAME_EXCHANGE), "listing": listing()}


@case("rename/exchange-missing-source")
def _():
    mkfile("g")
    return tr(renameat2, "f", "g", RENAME_EXCHANGE)


@case("rename/exchange-same")
def _():
    mkfile("f", b"one")
    return {"rename": tr(renameat2, "f", "f", RENAME_EXCHANGE), "f": readf("f")}


@case("rename/exchange-hardlinks")
def _():
    mkfile("f", b"one")
    os.link("f", "g")
    return {"rename": tr(renameat2, "f", "g", RENAME_EXCHANGE), "nlink": nlink("f")}


@case("rename/exchange-dir-into-own-subdir")
def _():
    os.makedirs("d/sub")
    return tr(renameat2, "d", "d/sub", RENAME_EXCHANGE)


@case("rename/exchange-and-noreplace")
def _():
    mkfile("f")
    mkfile("g")
    return tr(renameat2, "f", "g", RENAME_EXCHANGE | RENAME_NOREPLACE)


@case("rename/exchange-times")
def _():
    mkfile("f", b"one")
    mkfile("g", b"two")
    return times_effect(["f", "g", "."], lambda: renameat2("f", "g", RENAME_EXCHANGE))


@case("rename/whiteout")
def _():
    mkfile("f", b"one")
    r = tr(renameat2, "f", "g", RENAME_WHITEOUT)
    return {"rename": r, "f": lst("f"), "g": readf("g")}


@case("rename/unknown-flag")
def _():
    mkfile("f")
    return tr(renameat2, "f", "g", 1 << 7)


@case("rename/sticky-non-owner")
def _():
    r = sticky_setup()
    r["as_u2"] = as_user(U2, lambda: tr(os.rename, "d/f", "d/g"))
    r["listing"] = listing("d")
    return r


@case("rename/sticky-dir-owner")
def _():
    r = sticky_setup(dir_owner=U2)
    r["as_u2"] = as_user(U2, lambda: tr(os.rename, "d/f", "d/g"))
    r["listing"] = listing("d")
    return r


@case("rename/sticky-over-others-file")
def _():
    r = sticky_setup()

    def child():
        mkfile("d/mine", b"u2")
        return tr(os.rename, "d/mine", "d/f")
    r["as_u2"] = as_user(U2, child)
    r["f"] = readf("d/f")
    return r


@case("rename/sticky-own-file")
def _():
    shared_dir("d", 0o1777)

    def child():
        mkfile("d/mine")
        return [tr(os.rename, "d/mine", "d/g"), listing("d")]
    return as_user(U2, child)


@case("rename/sticky-exchange-non-owner")
def _():
    r = sticky_setup()

    def child():
        mkfile("d/mine")
        return tr(renameat2, "d/mine", "d/f", RENAME_EXCHANGE)
    r["as_u2"] = as_user(U2, child)
    return r


@case("rename/non-sticky-other-users-file")
def _():
    shared_dir("d")
    mkfile("d/f")
    p = prep("d/f", U1)
    return {"prep": p, "as_u2": as_user(U2, lambda: tr(os.rename, "d/f", "d/g")),
            "listing": listing("d")}


@case("rename/no-write-source-dir")
def _():
    os.mkdir("a")
    mkfile("a/f")
    os.chmod("a", 0o555)
    return tr(os.rename, "a/f", "g")


@case("rename/no-write-dest-dir")
def _():
    shared_dir("b", 0o555)
    mkfile("f")
    return tr(os.rename, "f", "b/f")


@case("rename/dir-without-write-moved-across")
def _():
    os.mkdir("p")
    os.mkdir("d")
    os.chmod("d", 0o555)
    return {"across": tr(os.rename, "d", "p/d"), "same_parent": tr(os.rename, "p/d", "p/e")
            if exists("p/d") else tr(os.rename, "d", "e")}


@case("rename/others-dir-across-parents")
def _():
    shared_dir("p1")
    shared_dir("p2")
    os.mkdir("p1/d")
    p = prep("p1/d", U1, perm=0o755)
    return {"prep": p, "as_u2": as_user(U2, lambda: tr(os.rename, "p1/d", "p2/d"))}

# ============================================================================================
# rmdir
# ============================================================================================


@case("rmdir/empty")
def _():
    os.mkdir("d")
    return {"rmdir": tr(os.rmdir, "d"), "listing": listing()}


@case("rmdir/nonempty-file")
def _():
    os.mkdir("d")
    mkfile("d/f")
    return tr(os.rmdir, "d")


@case("rmdir/nonempty-dir")
def _():
    os.makedirs("d/e")
    return tr(os.rmdir, "d")


@case("rmdir/file")
def _():
    mkfile("f")
    return tr(os.rmdir, "f")


@case("rmdir/symlink-to-dir")
def _():
    os.mkdir("d")
    os.symlink("d", "l")
    return {"rmdir": tr(os.rmdir, "l"), "listing": listing()}


@case("rmdir/dot")
def _():
    os.mkdir("d")
    return {"dot": tr(os.rmdir, "."), "d_dot": tr(os.rmdir, "d/.")}


@case("rmdir/dotdot")
def _():
    os.makedirs("d/e")
    return tr(os.rmdir, "d/e/..")


@case("rmdir/missing")
def _():
    return tr(os.rmdir, "nope")


@case("rmdir/component-not-dir")
def _():
    mkfile("f")
    return tr(os.rmdir, "f/d")


@case("rmdir/trailing-slash")
def _():
    os.mkdir("d")
    return {"rmdir": tr(os.rmdir, "d/"), "listing": listing()}


@case("rmdir/empty-name")
def _():
    return tr(os.rmdir, "")


@case("rmdir/parent-nlink")
def _():
    os.mkdir("a")
    os.mkdir("b")
    before = nlink(".")
    os.rmdir("a")
    return [before, nlink(".")]


@case("rmdir/times")
def _():
    os.mkdir("d")
    return times_effect(["."], lambda: os.rmdir("d"))


@case("rmdir/no-write-parent")
def _():
    os.mkdir("p")
    os.mkdir("p/d")
    os.chmod("p", 0o555)
    return tr(os.rmdir, "p/d")


@case("rmdir/sticky-non-owner")
def _():
    shared_dir("s", 0o1777)
    os.mkdir("s/d")
    p = prep("s/d", U1, perm=0o777)
    return {"prep": p, "as_u2": as_user(U2, lambda: tr(os.rmdir, "s/d")), "listing": listing("s")}


@case("rmdir/sticky-own")
def _():
    shared_dir("s", 0o1777)

    def child():
        os.mkdir("s/d")
        return tr(os.rmdir, "s/d")
    return as_user(U2, child)


@case("rmdir/open-dir-fstat")
def _():
    os.mkdir("d")
    fd = os.open("d", os.O_RDONLY | os.O_DIRECTORY)
    r = tr(os.rmdir, "d")
    out = {"rmdir": r, "fstat": fst(fd)}
    os.close(fd)
    return out


@case("rmdir/mountpoint-like-cwd")
def _():
    os.mkdir("d")

    def child():
        os.chdir("d")
        r = tr(os.rmdir, "../d")
        return {"rmdir": r, "getcwd": tr(os.getcwd), "create": openclose("x", O_CREAT_W),
                "listdir": listing(".")}
    return in_child(child)

# ============================================================================================
# symlink / readlink
# ============================================================================================


@case("symlink/readlink")
def _():
    mkfile("f")
    return {"symlink": tr(os.symlink, "f", "l"), "readlink": val(os.readlink, "l")}


@case("symlink/lstat")
def _():
    os.symlink("some/target", "l")
    return lst("l")


@case("symlink/stat-follows")
def _():
    mkfile("f", b"12345", perm=0o640)
    os.symlink("f", "l")
    return {"stat": st("l"), "same": same_file("l", "f")}


@case("symlink/dangling")
def _():
    os.symlink("nope", "l")
    return {"stat": st("l"), "lstat": lst("l"), "read": readf("l")}


@case("symlink/over-file")
def _():
    mkfile("f")
    return tr(os.symlink, "x", "f")


@case("symlink/over-symlink")
def _():
    os.symlink("a", "l")
    return {"symlink": tr(os.symlink, "b", "l"), "readlink": val(os.readlink, "l")}


@case("symlink/over-dir")
def _():
    os.mkdir("d")
    return tr(os.symlink, "x", "d")


@cases("symlink/target-length-{}", [1, 255, 1000, 4095, 4096])
def symlink_length(n):
    target = ("t" * 200 + "/") * (n // 201) + "t" * (n % 201)
    assert len(target) == n
    r = tr(os.symlink, target, "l")
    return {"symlink": r, "readlink_len": val(lambda: len(os.readlink("l"))),
            "lstat_size": val(lambda: os.lstat("l").st_size)}


@case("symlink/absolute-target")
def _():
    os.symlink("/nonexistent/silo/x", "l")
    return {"readlink": val(os.readlink, "l"), "stat": st("l")}


@case("symlink/empty-target")
def _():
    return {"symlink": tr(os.symlink, "", "l"), "listing": listing()}


@case("symlink/odd-target-bytes")
def _():
    target = b"a b\tc\xff\x01/../\xc3\xa9"
    r = tr(os.symlink, target, b"l")
    return {"symlink": r, "readlink": val(lambda: show(os.readlink(b"l")))}


@case("symlink/to-dir")
def _():
    os.mkdir("d")
    mkfile("d/f")
    os.symlink("d", "l")
    return {"listing": listing("l"), "read": readf("l/f"), "trailing_slash": st("l/")}


@case("symlink/dotdot-target")
def _():
    os.mkdir("d")
    mkfile("f", b"up")
    os.symlink("../f", "d/l")
    return {"read": readf("d/l"), "readlink": val(os.readlink, "d/l")}


@case("symlink/ids")
def _():
    os.symlink("x", "l")
    return {"ids": ids("l", False), "caller": [os.geteuid(), os.getegid()]}


@case("symlink/no-write-dir")
def _():
    shared_dir("d", 0o555)
    return tr(os.symlink, "x", "d/l")


@case("symlink/readlink-file")
def _():
    mkfile("f")
    return val(os.readlink, "f")


@case("symlink/readlink-dir")
def _():
    os.mkdir("d")
    return val(os.readlink, "d")


@case("symlink/readlink-missing")
def _():
    return val(os.readlink, "nope")


@case("symlink/readlink-small-buffer")
def _():
    os.symlink("abcdefgh", "l")
    buf = ctypes.create_string_buffer(4)
    _libc.readlink.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    _libc.readlink.restype = ctypes.c_ssize_t
    n = _libc.readlink(b"l", buf, 4)
    return {"n": n, "data": buf.raw[:max(n, 0)].decode()}


@case("symlink/name-256")
def _():
    return tr(os.symlink, "x", "n" * 256)


@case("symlink/parent-nlink-and-times")
def _():
    before = nlink(".")
    r = times_effect(["."], lambda: os.symlink("x", "l"))
    r["nlink"] = [before, nlink(".")]
    return r


@case("symlink/unlink-keeps-target")
def _():
    mkfile("f", b"data")
    os.symlink("f", "l")
    return {"unlink": tr(os.unlink, "l"), "f": readf("f"), "listing": listing()}


@case("symlink/loop-stat")
def _():
    os.symlink("l", "l")
    return {"stat": st("l"), "lstat": lst("l")}


@case("symlink/write-through")
def _():
    mkfile("f", b"abc")
    os.symlink("f", "l")
    return {"write": writef("l", b"X"), "f": readf("f")}


@case("symlink/in-sticky-dir-other-owner")
def _():
    shared_dir("d", 0o1777)
    mkfile("f", b"data", perm=0o644)
    os.symlink("../f", "d/l")
    p = prep("d/l", U1, follow=False)
    return {"prep": p, "as_u2": as_user(U2, lambda: readf("d/l"))}

# ============================================================================================
# truncate / ftruncate
# ============================================================================================


@case("truncate/grow-zeros")
def _():
    mkfile("f", b"abc")
    return {"truncate": tr(os.truncate, "f", 10), "data": readf("f")}


@case("truncate/shrink")
def _():
    mkfile("f", b"hello world")
    return {"truncate": tr(os.truncate, "f", 5), "data": readf("f")}


@case("truncate/to-zero")
def _():
    mkfile("f", b"hello")
    return {"truncate": tr(os.truncate, "f", 0), "size": size("f")}


@case("truncate/shrink-then-grow")
def _():
    mkfile("f", b"abcdefgh")
    os.truncate("f", 2)
    os.truncate("f", 8)
    return readf("f")


@case("truncate/grow-large-sparse")
def _():
    mkfile("f", b"x")
    r = tr(os.truncate, "f", 1 << 26)

    def tail():
        fd = os.open("f", os.O_RDONLY)
        try:
            return show(os.pread(fd, 4, (1 << 26) - 4))
        finally:
            os.close(fd)
    return {"truncate": r, "size": size("f"), "tail": val(tail)}


@case("truncate/huge")
def _():
    mkfile("f")
    return {"truncate": tr(os.truncate, "f", (1 << 63) - 1), "size": size("f")}


@case("truncate/negative")
def _():
    mkfile("f")
    return tr(os.truncate, "f", -1)


@case("truncate/ftruncate-negative")
def _():
    mkfile("f")
    fd = os.open("f", os.O_WRONLY)
    r = tr(os.ftruncate, fd, -1)
    os.close(fd)
    return r


@case("truncate/ftruncate-readonly-fd")
def _():
    mkfile("f", b"hello")
    fd = os.open("f", os.O_RDONLY)
    r = tr(os.ftruncate, fd, 1)
    os.close(fd)
    return {"ftruncate": r, "size": size("f")}


@case("truncate/ftruncate-opath-fd")
def _():
    mkfile("f", b"hello")
    fd = os.open("f", os.O_PATH)
    r = tr(os.ftruncate, fd, 1)
    os.close(fd)
    return r


@case("truncate/ftruncate-dir-fd")
def _():
    os.mkdir("d")
    fd = os.open("d", os.O_RDONLY)
    r = tr(os.ftruncate, fd, 0)
    os.close(fd)
    return r


@case("truncate/ftruncate-append-fd")
def _():
    mkfile("f", b"hello")
    fd = os.open("f", os.O_WRONLY | os.O_APPEND)
    r = tr(os.ftruncate, fd, 2)
    os.close(fd)
    return {"ftruncate": r, "data": readf("f")}


@case("truncate/ftruncate-then-write-at-offset")
def _():
    mkfile("f", b"")
    fd = os.open("f", os.O_RDWR)
    os.write(fd, b"0123456789")
    os.ftruncate(fd, 3)
    os.write(fd, b"X")           # at offset 10: leaves a hole of zeros
    os.close(fd)
    return readf("f")


@case("truncate/dir")
def _():
    os.mkdir("d")
    return tr(os.truncate, "d", 0)


@case("truncate/missing")
def _():
    return {"truncate": tr(os.truncate, "nope", 0), "listing": listing()}


@case("truncate/fifo")
def _():
    os.mkfifo("p")
    return tr(os.truncate, "p", 0)


@case("truncate/symlink-follows")
def _():
    mkfile("f", b"hello")
    os.symlink("f", "l")
    return {"truncate": tr(os.truncate, "l", 1), "f": readf("f"), "l": lst("l")}


@case("truncate/through-hardlink")
def _():
    mkfile("f", b"hello")
    os.link("f", "g")
    return {"truncate": tr(os.truncate, "g", 3), "f": readf("f")}


@case("truncate/owner-readonly")
def _():
    mkfile("f", b"hello", perm=0o444)
    return {"truncate": tr(os.truncate, "f", 1), "size": size("f")}


@cases("truncate/other-user-{:04o}", [0o644, 0o666])
def truncate_other(perm):
    mkfile("f", b"hello")
    p = prep("f", U1, perm=perm)
    return {"prep": p, "as_u2": as_user(U2, lambda: tr(os.truncate, "f", 1)), "size": size("f")}


@case("truncate/times")
def _():
    mkfile("f", b"hello")
    return times_effect(["f", "."], lambda: os.truncate("f", 2))


@case("truncate/same-size-times")
def _():
    mkfile("f", b"hello")
    return times_effect(["f"], lambda: os.truncate("f", 5))


@case("truncate/ftruncate-same-size-times")
def _():
    mkfile("f", b"hello")
    fd = os.open("f", os.O_WRONLY)
    r = times_effect(["f"], lambda: os.ftruncate(fd, 5))
    os.close(fd)
    return r

# ============================================================================================
# unlink
# ============================================================================================


@case("unlink/file")
def _():
    mkfile("f")
    return {"unlink": tr(os.unlink, "f"), "listing": listing()}


@case("unlink/dir")
def _():
    os.mkdir("d")
    return {"unlink": tr(os.unlink, "d"), "listing": listing()}


@case("unlink/dot")
def _():
    return tr(os.unlink, ".")


@case("unlink/missing")
def _():
    return tr(os.unlink, "nope")


@case("unlink/symlink-only")
def _():
    mkfile("f")
    os.symlink("f", "l")
    return {"unlink": tr(os.unlink, "l"), "listing": listing()}


@case("unlink/symlink-to-dir-trailing-slash")
def _():
    os.mkdir("d")
    os.symlink("d", "l")
    return {"unlink": tr(os.unlink, "l/"), "listing": listing()}


@case("unlink/dangling-symlink")
def _():
    os.symlink("nope", "l")
    return {"unlink": tr(os.unlink, "l"), "listing": listing()}


@case("unlink/trailing-slash-file")
def _():
    mkfile("f")
    return {"unlink": tr(os.unlink, "f/"), "listing": listing()}


@case("unlink/component-not-dir")
def _():
    mkfile("f")
    return tr(os.unlink, "f/x")


@case("unlink/name-256")
def _():
    return tr(os.unlink, "n" * 256)


@case("unlink/open-file-readable")
def _():
    mkfile("f", b"still here")
    fd = os.open("f", os.O_RDONLY)
    r = tr(os.unlink, "f")
    out = {"unlink": r, "read": fdread(fd), "fstat": fst(fd), "listing": listing()}
    os.close(fd)
    return out


@case("unlink/open-file-writable")
def _():
    mkfile("f", b"abc")
    fd = os.open("f", os.O_RDWR)
    os.unlink("f")
    os.pwrite(fd, b"XYZ", 3)
    os.ftruncate(fd, 5)
    out = {"read": fdread(fd), "fstat": fst(fd)}
    os.close(fd)
    return out


@case("unlink/hardlink-count")
def _():
    mkfile("f")
    os.link("f", "g")
    os.link("f", "h")
    os.unlink("g")
    return {"nlink": [nlink("f"), nlink("h")], "listing": listing()}


@case("unlink/hardlink-times")
def _():
    mkfile("f")
    os.link("f", "g")
    return times_effect(["f", "."], lambda: os.unlink("g"))


@case("unlink/fifo-and-socket")
def _():
    os.mkfifo("p")
    os.mknod("s", stat.S_IFSOCK | 0o644)
    return {"unlink": [tr(os.unlink, "p"), tr(os.unlink, "s")], "listing": listing()}


@case("unlink/readonly-file")
def _():
    mkfile("f", perm=0o444)
    return tr(os.unlink, "f")


@case("unlink/no-write-dir")
def _():
    os.mkdir("d")
    mkfile("d/f")
    os.chmod("d", 0o555)
    return {"unlink": tr(os.unlink, "d/f"), "listing": listing("d")}


@case("unlink/no-search-dir")
def _():
    os.mkdir("d")
    mkfile("d/f")
    os.chmod("d", 0o666)
    return tr(os.unlink, "d/f")


@case("unlink/sticky-non-owner")
def _():
    r = sticky_setup()
    r["as_u2"] = as_user(U2, lambda: tr(os.unlink, "d/f"))
    r["listing"] = listing("d")
    return r


@case("unlink/sticky-dir-owner")
def _():
    r = sticky_setup(dir_owner=U2)
    r["as_u2"] = as_user(U2, lambda: tr(os.unlink, "d/f"))
    r["listing"] = listing("d")
    return r


@case("unlink/sticky-file-owner")
def _():
    r = sticky_setup(file_owner=U2)
    r["as_u2"] = as_user(U2, lambda: tr(os.unlink, "d/f"))
    r["listing"] = listing("d")
    return r


@case("unlink/non-sticky-other-users-file")
def _():
    shared_dir("d")
    mkfile("d/f")
    p = prep("d/f", U1, perm=0o600)
    return {"prep": p, "as_u2": as_user(U2, lambda: tr(os.unlink, "d/f")), "listing": listing("d")}


@case("unlink/last-link-of-open-file-then-fchmod")
def _():
    mkfile("f")
    fd = os.open("f", os.O_RDWR)
    os.unlink("f")
    out = {"fchmod": tr(os.fchmod, fd, 0o600), "fstat": fst(fd)}
    os.close(fd)
    return out

# ============================================================================================
# utimensat (ctypes)
# ============================================================================================


def times_of(path, follow=True):
    """The exact mtime in nanoseconds (only for explicitly set times)."""
    return val(lambda: os.stat(path, follow_symlinks=follow).st_mtime_ns)


@cases("utime/explicit-{}", [("ns", 1_000_000_000, 123_456_789),
                             ("seconds", 1_500_000_000, 0),
                             ("max-nsec", 1_600_000_000, 999_999_999),
                             ("epoch", 0, 0),
                             ("negative", -1_000_000_000, 500),
                             ("year-2100", 4_102_444_800, 1),
                             ("year-2446", 14_900_000_000, 7)])
def utime_explicit(label, sec, nsec):
    mkfile("f")
    r = tr(utimensat, "f", ((sec, nsec), (sec, nsec)))
    return {"utimensat": r, "mtime_ns": times_of("f"), "expected": sec * 10**9 + nsec}


@case("utime/nsec-too-large")
def _():
    mkfile("f")
    return tr(utimensat, "f", ((1, 0), (1, 1_000_000_000)))


@case("utime/nsec-negative")
def _():
    mkfile("f")
    return tr(utimensat, "f", ((1, 0), (1, -1)))


@case("utime/now-both")
def _():
    mkfile("f")
    age("f")
    t0 = time.time_ns()
    r = tr(utimensat, "f", ((0, UTIME_NOW), (0, UTIME_NOW)))
    return {"utimensat": r, "mtime": trel(OLD_NS, os.stat("f").st_mtime_ns, t0)}


@case("utime/null-times")
def _():
    mkfile("f")
    age("f")
    t0 = time.time_ns()
    r = tr(utimensat, "f", None)
    return {"utimensat": r, "mtime": trel(OLD_NS, os.stat("f").st_mtime_ns, t0)}


@case("utime/omit-mtime")
def _():
    mkfile("f")
    age("f")
    r = tr(utimensat, "f", ((5, 0), (0, UTIME_OMIT)))
    return {"utimensat": r, "mtime_kept": os.stat("f").st_mtime_ns == OLD_NS}


@case("utime/omit-atime-set-mtime")
def _():
    mkfile("f")
    r = tr(utimensat, "f", ((0, UTIME_OMIT), (1_234_567_890, 42)))
    return {"utimensat": r, "mtime_ns": times_of("f")}


@case("utime/omit-both")
def _():
    mkfile("f")
    return times_effect(["f"], lambda: utimensat("f", ((0, UTIME_OMIT), (0, UTIME_OMIT))))


@case("utime/now-mtime-only")
def _():
    mkfile("f")
    age("f")
    t0 = time.time_ns()
    r = tr(utimensat, "f", ((0, UTIME_OMIT), (0, UTIME_NOW)))
    return {"utimensat": r, "mtime": trel(OLD_NS, os.stat("f").st_mtime_ns, t0)}


@case("utime/explicit-ctime")
def _():
    mkfile("f")
    return times_effect(["f", "."], lambda: utimensat("f", ((7, 0), (7, 0))))


@case("utime/symlink-nofollow")
def _():
    mkfile("f")
    age("f")
    os.symlink("f", "l")
    r = tr(utimensat, "l", ((2_000_000_000, 5), (2_000_000_000, 5)), AT_SYMLINK_NOFOLLOW)
    return {"utimensat": r, "link": times_of("l", False),
            "target_kept": os.stat("f").st_mtime_ns == OLD_NS}


@case("utime/symlink-follow")
def _():
    mkfile("f")
    os.symlink("f", "l")
    r = tr(utimensat, "l", ((2_000_000_000, 5), (2_000_000_000, 5)))
    return {"utimensat": r, "target": times_of("f")}


@case("utime/dir")
def _():
    os.mkdir("d")
    r = tr(utimensat, "d", ((1_111_111_111, 1), (1_111_111_111, 1)))
    return {"utimensat": r, "d": times_of("d")}


@case("utime/missing")
def _():
    return tr(utimensat, "nope", None)


@case("utime/bad-flags")
def _():
    mkfile("f")
    return tr(utimensat, "f", None, 0x4000)


@case("utime/futimens")
def _():
    mkfile("f")
    fd = os.open("f", os.O_RDONLY)
    r = tr(futimens, fd, ((3_000_000_000, 9), (3_000_000_000, 9)))
    os.close(fd)
    return {"futimens": r, "f": times_of("f")}


@case("utime/read-keeps-mtime")
def _():
    mkfile("f", b"data")
    age("f")
    readf("f")
    return os.stat("f").st_mtime_ns == OLD_NS


@case("utime/write-updates-mtime")
def _():
    mkfile("f", b"data")
    return times_effect(["f", "."], lambda: writef("f", b"x"))


@cases("utime/other-user-{}-{:04o}", [("now", 0o666), ("null", 0o666), ("explicit", 0o666),
                                      ("now", 0o644), ("null", 0o644), ("explicit", 0o644),
                                      ("omit", 0o644), ("now-omit", 0o666)])
def utime_other(how, perm):
    mkfile("f")
    p = prep("f", U1, perm=perm)
    arg = {"now": ((0, UTIME_NOW), (0, UTIME_NOW)), "null": None,
           "explicit": ((5, 0), (5, 0)), "omit": ((0, UTIME_OMIT), (0, UTIME_OMIT)),
           "now-omit": ((0, UTIME_NOW), (0, UTIME_OMIT))}[how]
    return {"prep": p, "as_u2": as_user(U2, lambda: tr(utimensat, "f", arg))}


@cases("utime/owner-readonly-{}", ["now", "explicit"])
def utime_owner_readonly(how):
    mkfile("f", perm=0o444)
    arg = ((0, UTIME_NOW), (0, UTIME_NOW)) if how == "now" else ((5, 0), (5, 0))
    return tr(utimensat, "f", arg)


@case("utime/os-utime-roundtrip")
def _():
    mkfile("f")
    os.utime("f", ns=(111_222_333_444_555_666, 1_222_333_444_555_666_777))
    return times_of("f")

# ============================================================================================
# extended attributes
# ============================================================================================


def xget(path, name, follow=True):
    return val(lambda: show(os.getxattr(path, name, follow_symlinks=follow)))


def xlist(path, follow=True):
    return val(lambda: sorted(os.listxattr(path, follow_symlinks=follow)))


@case("xattr/set-get")
def _():
    mkfile("f")
    return {"set": tr(os.setxattr, "f", "user.a", b"value"), "get": xget("f", "user.a")}


@case("xattr/list")
def _():
    mkfile("f")
    for n in ("user.b", "user.a", "user.c"):
        os.setxattr("f", n, b"1")
    return xlist("f")


@case("xattr/list-empty")
def _():
    mkfile("f")
    return xlist("f")


@case("xattr/list-many-sorted")
def _():
    mkfile("f")
    for i in range(20):
        os.setxattr("f", "user.k%02d" % ((i * 7) % 20), b"v%d" % i)
    return {"list": xlist("f"), "k07": xget("f", "user.k07")}


@case("xattr/remove")
def _():
    mkfile("f")
    os.setxattr("f", "user.a", b"1")
    return {"remove": tr(os.removexattr, "f", "user.a"), "get": xget("f", "user.a"),
            "list": xlist("f")}


@case("xattr/get-missing")
def _():
    mkfile("f")
    return xget("f", "user.nope")


@case("xattr/remove-missing")
def _():
    mkfile("f")
    return tr(os.removexattr, "f", "user.nope")


@case("xattr/create-existing")
def _():
    mkfile("f")
    os.setxattr("f", "user.a", b"one")
    return {"set": tr(os.setxattr, "f", "user.a", b"two", os.XATTR_CREATE),
            "get": xget("f", "user.a")}


@case("xattr/create-new")
def _():
    mkfile("f")
    return {"set": tr(os.setxattr, "f", "user.a", b"one", os.XATTR_CREATE),
            "get": xget("f", "user.a")}


@case("xattr/replace-missing")
def _():
    mkfile("f")
    return {"set": tr(os.setxattr, "f", "user.a", b"one", os.XATTR_REPLACE), "list": xlist("f")}


@case("xattr/replace-existing")
def _():
    mkfile("f")
    os.setxattr("f", "user.a", b"one")
    return {"set": tr(os.setxattr, "f", "user.a", b"two", os.XATTR_REPLACE),
            "get": xget("f", "user.a")}


@case("xattr/create-and-replace")
def _():
    mkfile("f")
    return tr(os.setxattr, "f", "user.a", b"x", os.XATTR_CREATE | os.XATTR_REPLACE)


@case("xattr/overwrite-shorter")
def _():
    mkfile("f")
    os.setxattr("f", "user.a", b"a long value")
    os.setxattr("f", "user.a", b"s")
    return xget("f", "user.a")


@case("xattr/empty-value")
def _():
    mkfile("f")
    return {"set": tr(os.setxattr, "f", "user.a", b""), "get": xget("f", "user.a"),
            "list": xlist("f")}


@case("xattr/binary-value")
def _():
    mkfile("f")
    v = bytes(range(256))
    return {"set": tr(os.setxattr, "f", "user.bin", v), "get": xget("f", "user.bin")}


@cases("xattr/value-size-{}", [1000, 4000, 8192, 65536, 65537])
def xattr_value_size(n):
    mkfile("f")
    v = bytes((i * 31) & 0xFF for i in range(n))
    return {"set": tr(os.setxattr, "f", "user.big", v), "get": xget("f", "user.big")}


@case("xattr/total-many-values")
def _():
    mkfile("f")
    results = [tr(os.setxattr, "f", "user.v%d" % i, b"x" * 1000) for i in range(8)]
    return {"set": results, "count": val(lambda: len(os.listxattr("f")))}


@cases("xattr/name-length-{}", [250, 255, 256])
def xattr_name_length(n):
    mkfile("f")
    name = "user." + "n" * (n - 5)
    return {"set": tr(os.setxattr, "f", name, b"1"), "get": xget("f", name)}


@case("xattr/name-empty-suffix")
def _():
    mkfile("f")
    return tr(os.setxattr, "f", "user.", b"1")


@case("xattr/name-empty")
def _():
    mkfile("f")
    return {"set": tr(os.setxattr, "f", "", b"1"), "get": xget("f", "")}


@case("xattr/name-without-namespace")
def _():
    mkfile("f")
    return {"set": tr(os.setxattr, "f", "plain", b"1"), "get": xget("f", "plain")}


@case("xattr/name-unknown-namespace")
def _():
    mkfile("f")
    return {"set": tr(os.setxattr, "f", "bogus.x", b"1"), "get": xget("f", "bogus.x")}


@case("xattr/name-odd-characters")
def _():
    mkfile("f")
    name = "user.a b/c:d\u00e9"
    return {"set": tr(os.setxattr, "f", name, b"1"), "list": xlist("f")}


@case("xattr/symlink-user-set")
def _():
    mkfile("f")
    os.symlink("f", "l")
    return {"set": tr(os.setxattr, "l", "user.a", b"1", follow_symlinks=False),
            "target": xlist("f")}


@case("xattr/symlink-user-get-list")
def _():
    os.symlink("nope", "l")
    return {"get": xget("l", "user.a", False), "list": xlist("l", False)}


@case("xattr/symlink-follows")
def _():
    mkfile("f")
    os.symlink("f", "l")
    return {"set": tr(os.setxattr, "l", "user.a", b"via-link"), "target": xget("f", "user.a")}


@case("xattr/fifo-user")
def _():
    os.mkfifo("p")
    return {"set": tr(os.setxattr, "p", "user.a", b"1"), "get": xget("p", "user.a")}


@case("xattr/dir")
def _():
    os.mkdir("d")
    return {"set": tr(os.setxattr, "d", "user.a", b"dir"), "get": xget("d", "user.a"),
            "list": xlist("d")}


@case("xattr/fd-based")
def _():
    mkfile("f")
    fd = os.open("f", os.O_RDONLY)
    r = {"set": tr(os.setxattr, fd, "user.a", b"fd"), "get": val(lambda: show(
        os.getxattr(fd, "user.a"))), "list": val(lambda: sorted(os.listxattr(fd)))}
    os.close(fd)
    return r


@case("xattr/trusted")
def _():
    mkfile("f")
    return {"set": tr(os.setxattr, "f", "trusted.a", b"t"), "get": xget("f", "trusted.a"),
            "list": xlist("f")}


@case("xattr/trusted-invisible-to-others")
def _():
    mkfile("f")
    r = {"set": tr(os.setxattr, "f", "trusted.a", b"t")}
    os.setxattr("f", "user.u", b"u")
    r["as_u2"] = as_user(U2, lambda: {"list": xlist("f"), "get": xget("f", "trusted.a")})
    return r


@case("xattr/security")
def _():
    mkfile("f")
    return {"set": tr(os.setxattr, "f", "security.silotest", b"s"),
            "get": xget("f", "security.silotest")}


@case("xattr/posix-acl-garbage")
def _():
    mkfile("f")
    return tr(os.setxattr, "f", "system.posix_acl_access", b"garbage")


@case("xattr/system-unknown")
def _():
    mkfile("f")
    return tr(os.setxattr, "f", "system.silotest", b"x")


@cases("xattr/other-user-{:04o}", [0o644, 0o666, 0o600])
def xattr_other(perm):
    mkfile("f")
    os.setxattr("f", "user.a", b"owner")
    p = prep("f", U1, perm=perm)
    return {"prep": p, "as_u2": as_user(U2, lambda: {
        "get": xget("f", "user.a"), "list": xlist("f"),
        "set": tr(os.setxattr, "f", "user.b", b"other"),
        "remove": tr(os.removexattr, "f", "user.a")})}


@case("xattr/owner-mode-0000")
def _():
    mkfile("f")
    os.setxattr("f", "user.a", b"1")
    os.chmod("f", 0)
    return {"get": xget("f", "user.a"), "set": tr(os.setxattr, "f", "user.b", b"2"),
            "list": xlist("f")}


@case("xattr/sticky-dir-non-owner")
def _():
    shared_dir("d", 0o1777)
    p = prep("d", U1, perm=0o1777)
    return {"prep": p, "as_u2": as_user(U2, lambda: tr(os.setxattr, "d", "user.a", b"1"))}


@case("xattr/times")
def _():
    mkfile("f")
    return times_effect(["f"], lambda: os.setxattr("f", "user.a", b"1"))


@case("xattr/remove-times")
def _():
    mkfile("f")
    os.setxattr("f", "user.a", b"1")
    return times_effect(["f"], lambda: os.removexattr("f", "user.a"))


@case("xattr/get-size-query-and-small-buffer")
def _():
    mkfile("f")
    os.setxattr("f", "user.a", b"0123456789")
    return {"size": val(lgetxattr_sized, "f", "user.a", 0),
            "small": val(lgetxattr_sized, "f", "user.a", 4),
            "exact": val(lgetxattr_sized, "f", "user.a", 10)}


@case("xattr/list-size-query-and-small-buffer")
def _():
    mkfile("f")
    os.setxattr("f", "user.a", b"1")
    os.setxattr("f", "user.bb", b"1")
    return {"size": val(llistxattr_sized, "f", 0), "small": val(llistxattr_sized, "f", 3)}


@case("xattr/survive-rename-and-link")
def _():
    mkfile("f")
    os.setxattr("f", "user.a", b"kept")
    os.rename("f", "g")
    os.link("g", "h")
    return {"g": xget("g", "user.a"), "h": xget("h", "user.a")}


@case("xattr/survive-truncate-and-write")
def _():
    mkfile("f", b"hello")
    os.setxattr("f", "user.a", b"kept")
    os.truncate("f", 0)
    writef("f", b"new")
    return xget("f", "user.a")


@case("xattr/gone-after-recreate")
def _():
    mkfile("f")
    os.setxattr("f", "user.a", b"old")
    os.unlink("f")
    mkfile("f")
    return xlist("f")


@case("xattr/missing-file")
def _():
    return {"get": xget("nope", "user.a"), "set": tr(os.setxattr, "nope", "user.a", b"1")}


@case("xattr/rename-exchange-carries")
def _():
    mkfile("f")
    mkfile("g")
    os.setxattr("f", "user.who", b"f")
    os.setxattr("g", "user.who", b"g")
    r = tr(renameat2, "f", "g", RENAME_EXCHANGE)
    return {"rename": r, "f": xget("f", "user.who"), "g": xget("g", "user.who")}

# ============================================================================================
# fallocate (ctypes)
# ============================================================================================


def falloc_case(initial, fmode, offset, length, flags=os.O_RDWR):
    """Create f with initial bytes, fallocate, report outcome, size and content summary."""
    mkfile("f", initial)
    fd = os.open("f", flags)
    try:
        r = tr(fallocate, fd, fmode, offset, length)
    finally:
        os.close(fd)
    with open("f", "rb") as fh:
        data = fh.read()
    return {"fallocate": r, "size": len(data), "zeros": data.count(0),
            "sha256": hashlib.sha256(data).hexdigest()[:16]}


A16K = b"a" * 16384


@case("falloc/default-grows")
def _():
    return falloc_case(b"", 0, 0, 8192)


@case("falloc/default-within-size")
def _():
    return falloc_case(A16K, 0, 100, 100)


@case("falloc/default-beyond-end")
def _():
    return falloc_case(b"abc", 0, 10000, 100)


@case("falloc/keep-size")
def _():
    return falloc_case(b"", FALLOC_KEEP_SIZE, 0, 8192)


@case("falloc/keep-size-beyond-end")
def _():
    return falloc_case(b"abc", FALLOC_KEEP_SIZE, 4096, 4096)


@case("falloc/punch-hole-aligned")
def _():
    return falloc_case(A16K, FALLOC_PUNCH_HOLE | FALLOC_KEEP_SIZE, 4096, 4096)


@case("falloc/punch-hole-unaligned")
def _():
    return falloc_case(A16K, FALLOC_PUNCH_HOLE | FALLOC_KEEP_SIZE, 100, 50)


@case("falloc/punch-hole-past-end")
def _():
    return falloc_case(A16K, FALLOC_PUNCH_HOLE | FALLOC_KEEP_SIZE, 12288, 10000)


@case("falloc/punch-hole-without-keep-size")
def _():
    return falloc_case(A16K, FALLOC_PUNCH_HOLE, 4096, 4096)


@case("falloc/zero-range")
def _():
    return falloc_case(A16K, FALLOC_ZERO_RANGE, 4096, 4096)


@case("falloc/zero-range-unaligned")
def _():
    return falloc_case(A16K, FALLOC_ZERO_RANGE, 10, 20)


@case("falloc/zero-range-extends")
def _():
    return falloc_case(b"abc", FALLOC_ZERO_RANGE, 0, 8192)


@case("falloc/zero-range-keep-size")
def _():
    return falloc_case(b"abc", FALLOC_ZERO_RANGE | FALLOC_KEEP_SIZE, 0, 8192)


@case("falloc/collapse-range")
def _():
    return falloc_case(A16K, FALLOC_COLLAPSE_RANGE, 4096, 4096)


@case("falloc/insert-range")
def _():
    return falloc_case(A16K, FALLOC_INSERT_RANGE, 4096, 4096)


@case("falloc/zero-length")
def _():
    return falloc_case(b"abc", 0, 0, 0)


@case("falloc/negative-offset")
def _():
    return falloc_case(b"abc", 0, -1, 10)


@case("falloc/unknown-mode")
def _():
    return falloc_case(b"abc", 0x400, 0, 10)


@case("falloc/readonly-fd")
def _():
    return falloc_case(b"abc", 0, 0, 8192, os.O_RDONLY)


@case("falloc/append-fd")
def _():
    return falloc_case(b"abc", 0, 0, 8192, os.O_WRONLY | os.O_APPEND)


@case("falloc/fifo")
def _():
    os.mkfifo("p")
    fd = os.open("p", os.O_RDWR)
    r = tr(fallocate, fd, 0, 0, 10)
    os.close(fd)
    return r


@case("falloc/dir-fd")
def _():
    os.mkdir("d")
    fd = os.open("d", os.O_RDONLY)
    r = tr(fallocate, fd, 0, 0, 10)
    os.close(fd)
    return r


@case("falloc/posix-fallocate")
def _():
    mkfile("f", b"abc")
    fd = os.open("f", os.O_RDWR)
    r = tr(os.posix_fallocate, fd, 0, 5000)
    os.close(fd)
    return {"posix_fallocate": r, "size": size("f"), "data": readf("f")}


@case("falloc/times-grow")
def _():
    mkfile("f", b"abc")
    fd = os.open("f", os.O_RDWR)
    r = times_effect(["f"], lambda: fallocate(fd, 0, 0, 8192))
    os.close(fd)
    return r


@case("falloc/times-punch")
def _():
    mkfile("f", A16K)
    fd = os.open("f", os.O_RDWR)
    r = times_effect(["f"], lambda: fallocate(fd, FALLOC_PUNCH_HOLE | FALLOC_KEEP_SIZE, 0, 4096))
    os.close(fd)
    return r

# ============================================================================================
# directories: nlink, readdir (including removed-but-open directories)
# ============================================================================================


@cases("dir/nlink-{}-subdirs", [0, 1, 3, 10])
def dir_nlink(n):
    os.mkdir("d")
    for i in range(n):
        os.mkdir("d/s%d" % i)
    return nlink("d")


@case("dir/nlink-files-and-links-dont-count")
def _():
    os.mkdir("d")
    os.mkdir("e")
    mkfile("d/f")
    os.symlink("../e", "d/l")
    os.mkfifo("d/p")
    return nlink("d")


@case("dir/nlink-after-rmdir-and-rename")
def _():
    os.makedirs("d/a")
    os.mkdir("d/b")
    counts = [nlink("d")]
    os.rmdir("d/a")
    counts.append(nlink("d"))
    os.rename("d/b", "moved")
    counts.append(nlink("d"))
    return counts


@case("dir/listing-mixed")
def _():
    os.mkdir("sub")
    mkfile("file")
    os.symlink("file", "link")
    os.mkfifo("fifo")
    os.link("file", "hard")
    entries = val(lambda: sorted((e.name, e.is_dir(follow_symlinks=False),
                                  e.is_file(follow_symlinks=False), e.is_symlink())
                                 for e in os.scandir(".")))
    return entries


@case("dir/listing-many")
def _():
    for i in range(300):
        mkfile("f%03d" % i, b"")
    names = os.listdir(".")
    return {"count": len(names), "unique": len(set(names)),
            "sha256": hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()[:16]}


@case("dir/listing-after-unlinks")
def _():
    for i in range(10):
        mkfile("f%d" % i)
    for i in range(0, 10, 2):
        os.unlink("f%d" % i)
    return listing()


@case("dir/listing-is-stable")
def _():
    for n in ("b", "a", "c", "d"):
        mkfile(n)
    first = [e.name for e in os.scandir(".")]
    second = [e.name for e in os.scandir(".")]
    return first == second


@case("dir/readdir-while-modifying")
def _():
    for i in range(20):
        mkfile("f%02d" % i)
    seen = []
    with os.scandir(".") as it:
        for i, e in enumerate(it):
            seen.append(e.name)
            if i == 0:
                mkfile("new")
                os.unlink("f19" if e.name != "f19" else "f18")
    return {"no_duplicates": len(seen) == len(set(seen)), "final": len(os.listdir("."))}


@case("dir/dotdot")
def _():
    os.makedirs("a/b")
    return {"a_b_dotdot": same_file("a/b/..", "a"), "a_dot": same_file("a/.", "a")}


@case("dir/removed-open-readdir")
def _():
    os.mkdir("d")
    fd = os.open("d", os.O_RDONLY | os.O_DIRECTORY)
    os.rmdir("d")
    out = {"listdir": val(lambda: sorted(os.listdir(fd))), "fstat": fst(fd)}
    os.close(fd)
    return out


@case("dir/removed-open-create")
def _():
    os.mkdir("d")
    fd = os.open("d", os.O_RDONLY | os.O_DIRECTORY)
    os.rmdir("d")
    out = {"create": val(lambda: os.close(os.open("x", O_CREAT_W, 0o644, dir_fd=fd)) or "ok"),
           "mkdir": tr(os.mkdir, "x", dir_fd=fd),
           "symlink": tr(os.symlink, "t", "x", dir_fd=fd),
           "stat_dot": val(lambda: summary(os.stat(".", dir_fd=fd)))}
    os.close(fd)
    return out


@case("dir/removed-open-fchdir")
def _():
    os.mkdir("d")

    def child():
        fd = os.open("d", os.O_RDONLY | os.O_DIRECTORY)
        os.rmdir("d")
        os.fchdir(fd)
        return {"getcwd": tr(os.getcwd), "listdir": listing("."), "dotdot": tr(os.stat, "..")}
    return in_child(child)


@case("dir/emptied-open-readdir")
def _():
    os.mkdir("d")
    mkfile("d/f")
    fd = os.open("d", os.O_RDONLY | os.O_DIRECTORY)
    os.unlink("d/f")
    out = {"listdir": val(lambda: sorted(os.listdir(fd)))}
    os.close(fd)
    return out


@case("dir/renamed-open-readdir")
def _():
    os.mkdir("d")
    mkfile("d/f")
    fd = os.open("d", os.O_RDONLY | os.O_DIRECTORY)
    os.rename("d", "e")
    mkfile("e/g")
    out = {"listdir": val(lambda: sorted(os.listdir(fd)))}
    os.close(fd)
    return out


@case("dir/read-dir-fd")
def _():
    os.mkdir("d")
    fd = os.open("d", os.O_RDONLY | os.O_DIRECTORY)
    r = tr(os.read, fd, 10)
    os.close(fd)
    return r


@case("dir/opendir-no-read-permission")
def _():
    os.mkdir("d")
    mkfile("d/f")
    os.chmod("d", 0o311)
    return {"listdir": listing("d"), "stat_inside": st("d/f")}


@case("dir/search-only-other-user")
def _():
    os.mkdir("d")
    mkfile("d/f", b"data")
    p = prep("d", U1, perm=0o711)
    return {"prep": p,
            "as_u2": as_user(U2, lambda: {"listdir": listing("d"), "read": readf("d/f")})}

# ============================================================================================
# access(2) and a little I/O
# ============================================================================================


@cases("access/mode-{:04o}", [0o000, 0o100, 0o400, 0o600, 0o755])
def access_mode(perm):
    mkfile("f", perm=perm)
    return {k: val(lambda m=m: os.access("f", m) and "ok" or "denied")
            for k, m in (("R", os.R_OK), ("W", os.W_OK), ("X", os.X_OK), ("F", os.F_OK))}


@case("access/dir-0000")
def _():
    os.mkdir("d")
    os.chmod("d", 0)
    return {k: os.access("d", m) for k, m in (("R", os.R_OK), ("W", os.W_OK), ("X", os.X_OK))}


@case("access/other-user")
def _():
    mkfile("f")
    p = prep("f", U1, perm=0o604)
    return {"prep": p, "as_u2": as_user(U2, lambda: [os.access("f", os.R_OK),
                                                    os.access("f", os.W_OK)])}


@case("io/sparse-read-zeros")
def _():
    fd = os.open("f", O_CREAT_W, 0o644)
    os.pwrite(fd, b"end", 100000)
    os.close(fd)
    with open("f", "rb") as fh:
        data = fh.read()
    return {"size": len(data), "zeros": data.count(0), "tail": show(data[-3:])}


@case("io/overwrite-middle")
def _():
    mkfile("f", b"0123456789")
    fd = os.open("f", os.O_WRONLY)
    os.pwrite(fd, b"ab", 4)
    os.close(fd)
    return readf("f")


@case("io/read-past-eof")
def _():
    mkfile("f", b"abc")
    fd = os.open("f", os.O_RDONLY)
    r = show(os.pread(fd, 10, 100))
    os.close(fd)
    return r


@case("io/lseek-end")
def _():
    mkfile("f", b"abcdef")
    fd = os.open("f", os.O_RDONLY)
    r = [os.lseek(fd, 0, os.SEEK_END), os.lseek(fd, -2, os.SEEK_END), show(os.read(fd, 10))]
    os.close(fd)
    return r


@case("io/lseek-negative")
def _():
    mkfile("f", b"abc")
    fd = os.open("f", os.O_RDONLY)
    r = val(os.lseek, fd, -10, os.SEEK_SET)
    os.close(fd)
    return r


@case("io/seek-data-hole")
def _():
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    os.pwrite(fd, b"x" * 4096, 1 << 20)
    r = {"data_from_0": val(os.lseek, fd, 0, os.SEEK_DATA),
         "hole_from_data": val(os.lseek, fd, 1 << 20, os.SEEK_HOLE),
         "data_past_end": val(os.lseek, fd, (1 << 20) + 8192, os.SEEK_DATA)}
    os.close(fd)
    return r


@case("io/write-read-large")
def _():
    blob = hashlib.sha256(b"seed").digest() * 40000      # 1.28 MB
    mkfile("f", blob)
    return {"size": size("f"), "same": readf("f") == show(blob)}


@case("io/write-then-read-other-fd")
def _():
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"visible")
    other = readf("f")
    os.close(fd)
    return other


@case("io/fsync-fdatasync")
def _():
    fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"x")
    r = [tr(os.fsync, fd), tr(os.fdatasync, fd)]
    os.close(fd)
    dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    r.append(tr(os.fsync, dfd))
    os.close(dfd)
    return r


@case("io/copy-file-range")
def _():
    mkfile("a", b"0123456789")
    mkfile("b", b"")
    src, dst = os.open("a", os.O_RDONLY), os.open("b", os.O_WRONLY)
    r = val(os.copy_file_range, src, dst, 6, 2, 0)
    os.close(src)
    os.close(dst)
    return {"copied": r, "b": readf("b")}

# ============================================================================================
# Runner
# ============================================================================================


def _safe(name):
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def _cleanup(path):
    """Remove path as far as the caller's rights allow (directories are made 0700 first)."""
    try:
        st_ = os.lstat(path)
    except OSError:
        return
    if stat.S_ISDIR(st_.st_mode):
        try:
            os.chmod(path, 0o700)
        except OSError:
            pass
        try:
            names = os.listdir(path)
        except OSError:
            names = []
        for n in names:
            _cleanup(os.path.join(path, n))
        try:
            os.rmdir(path)
        except OSError:
            pass
    else:
        try:
            os.unlink(path)
        except OSError:
            pass


def _open_fds():
    return {int(n) for n in os.listdir("/proc/self/fd")}


def _jsonable(value):
    return json.loads(json.dumps(value))


def run_cases(base, only=None):
    os.umask(0o022)
    base = os.path.abspath(base)
    results = {}
    fds_before = _open_fds()
    signal.signal(signal.SIGALRM, _on_alarm)
    for index, (name, fn) in enumerate(CASES):
        if only and not fnmatch.fnmatchcase(name, only):
            continue
        cdir = os.path.join(base, "c%03d-%s" % (index, _safe(name)))
        _cleanup(cdir)
        os.mkdir(cdir, 0o755)
        os.chdir(cdir)
        try:
            signal.alarm(CASE_TIMEOUT)
            result = _jsonable(fn())
        except OSError as exc:
            result = {"exception": "OSError " + ename(exc)}
        except Exception as exc:                      # noqa: BLE001 - recorded, not hidden
            result = {"exception": "%s: %s" % (type(exc).__name__, exc)}
        finally:
            signal.alarm(0)
            os.umask(0o022)
            os.chdir(base)
            for fd in _open_fds() - fds_before:       # a case that failed midway leaks fds
                try:
                    os.close(fd)
                except OSError:
                    pass
            _cleanup(cdir)
        results[name] = result
    return {"uid": os.geteuid(), "cases": results}

# ============================================================================================
# Compare
# ============================================================================================

MISSING = "<missing>"


def _diff_view(a, b):
    """For two dicts, only the keys whose values differ; otherwise the values themselves."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(k for k in set(a) | set(b) if a.get(k, MISSING) != b.get(k, MISSING))
        return ({k: a.get(k, MISSING) for k in keys}, {k: b.get(k, MISSING) for k in keys})
    return a, b


def compare(path_a, path_b, allowed_path=None):
    with open(path_a) as f:
        a = json.load(f)
    with open(path_b) as f:
        b = json.load(f)
    rules = []
    if allowed_path:
        with open(allowed_path) as f:
            rules = json.load(f)
    uid = a.get("uid")
    counts = {"same": 0, "allowed": 0, "unexpected": 0}
    differences = []
    for name in sorted(set(a["cases"]) | set(b["cases"])):
        va, vb = a["cases"].get(name, MISSING), b["cases"].get(name, MISSING)
        if va == vb:
            counts["same"] += 1
            continue
        why = None
        for rule in rules:
            if "uid" in rule and rule["uid"] != uid:
                continue
            if fnmatch.fnmatchcase(name, rule["case"]):
                why = rule.get("why", "")
                break
        da, db = _diff_view(va, vb)
        entry = {"case": name, "class": "allowed" if why is not None else "unexpected",
                 "a": da, "b": db}
        if why is not None:
            entry["why"] = why
        counts[entry["class"]] += 1
        differences.append(entry)
    return {"uid_a": uid, "uid_b": b.get("uid"), **counts, "differences": differences}


def _print_report(report, path_a, path_b):
    if report["uid_a"] != report["uid_b"]:
        print("note: A ran as uid %s, B as uid %s" % (report["uid_a"], report["uid_b"]))
    for d in report["differences"]:
        print("%-10s %s" % (d["class"].upper(), d["case"]))
        print("    A (%s): %s" % (path_a, json.dumps(d["a"], sort_keys=True)))
        print("    B (%s): %s" % (path_b, json.dumps(d["b"], sort_keys=True)))
        if "why" in d:
            print("    why: %s" % d["why"])
    print("same %d, allowed %d, unexpected %d" % (report["same"], report["allowed"],
                                                  report["unexpected"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run every case in DIR, print JSON")
    p_run.add_argument("dir")
    p_run.add_argument("--only", help="fnmatch pattern of case names to run")
    sub.add_parser("list", help="print the case names")
    p_cmp = sub.add_parser("compare", help="compare two outputs of run")
    p_cmp.add_argument("a")
    p_cmp.add_argument("b")
    p_cmp.add_argument("--allowed", help="JSON list of {case, why[, uid]} allowed differences")
    p_cmp.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    if args.command == "list":
        for name, _fn in CASES:
            print(name)
        return 0
    if args.command == "run":
        out = run_cases(args.dir, args.only)
        json.dump(out, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    report = compare(args.a, args.b, args.allowed)
    if args.json:
        json.dump(report, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        _print_report(report, args.a, args.b)
    return 1 if report["unexpected"] else 0


if __name__ == "__main__":
    sys.exit(main())
