/*
 * The bootstrap init of the local enclave flavour (docs/spec/09-eif.md 9.11): PID 1 of the microVM
 * that boots an EIF. Written for this project, after the behaviour of the init nitro-cli ships
 * as the EIF layout implies it (ramdisk 0 then 1, cmd and env files, rootfs/), not from AWS source.
 * It is measured with ramdisk 0 (PCR1).
 *
 * The initramfs is ramdisk 0 then ramdisk 1, concatenated as Nitro loads them:
 *   /init, /nsm.ko, /modules/NAME.ko, /dev/     (ramdisk 0: this file, the kernel's modules)
 *   /rootfs/..., /cmd, /env                     (ramdisk 1: the image, its command and environment)
 *
 * 1. mount devtmpfs on /dev and write to the console;
 * 2. load /modules/NAME.ko in name order (the virtio-mmio transport, a module in this kernel),
 *    then /nsm.ko, as Nitro's init does;
 * 3. mount proc, sys, dev, dev/pts, dev/shm, tmp and run inside /rootfs;
 * 4. read /cmd and /env (one value per line), move /rootfs onto / and chroot into it;
 * 5. run the command as a child and reap every process; when the command exits, reset the VM
 *    (the launcher runs QEMU with -no-reboot, so a reset ends it), as an enclave ends.
 *
 * Any failure before the command runs is printed and ends the VM: a half-set-up enclave never runs.
 * Built statically (gcc -static -Os), so ramdisk 0 needs no loader or libc.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_VALUES 256

static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("enclave-init: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void end_vm(void) {
    sync();
    reboot(RB_AUTOBOOT);
    for (;;) pause();
}

static void die(const char *what) {
    say("%s: %s", what, strerror(errno));
    end_vm();
}

static void mount_or_die(const char *source, const char *target, const char *type, unsigned long flags,
                         const char *options) {
    mkdir(target, 0755);
    if (mount(source, target, type, flags, options) != 0) die(target);
}

static void load_module(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(path);
    if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST) die(path);
    close(fd);
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

static int is_module(const struct dirent *d) {
    size_t n = strlen(d->d_name);
    return n > 3 && strcmp(d->d_name + n - 3, ".ko") == 0;
}

static void load_modules(void) {
    struct dirent **names;
    int n = scandir("/modules", &names, is_module, by_name);
    if (n < 0 && errno != ENOENT) die("/modules");
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "/modules/%s", names[i]->d_name);
        load_module(path);
        free(names[i]);
    }
    if (n > 0) free(names);
    load_module("/nsm.ko");
}

/* One value per line; the file's lines are copied into a NULL-terminated array. */
static char **read_values(const char *path) {
    FILE *f = fopen(path, "re");
    if (!f) die(path);
    char **values = calloc(MAX_VALUES + 1, sizeof *values);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int n = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') line[len - 1] = '\0';
        if (n == MAX_VALUES) {
            errno = E2BIG;
            die(path);
        }
        values[n++] = strdup(line);
    }
    free(line);
    fclose(f);
    return values;
}

static void enter_rootfs(void) {
    if (mount("/rootfs", "/rootfs", NULL, MS_BIND | MS_REC, NULL) != 0) die("bind /rootfs");
    mount_or_die("proc", "/rootfs/proc", "proc", MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL);
    mount_or_die("sysfs", "/rootfs/sys", "sysfs", MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL);
    mount_or_die("dev", "/rootfs/dev", "devtmpfs", MS_NOSUID, NULL);
    mount_or_die("devpts", "/rootfs/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "ptmxmode=0666,newinstance");
    mount_or_die("shm", "/rootfs/dev/shm", "tmpfs", MS_NODEV | MS_NOSUID, "mode=1777");
    mount_or_die("tmp", "/rootfs/tmp", "tmpfs", MS_NODEV | MS_NOSUID, "mode=1777");
    mount_or_die("run", "/rootfs/run", "tmpfs", MS_NODEV | MS_NOSUID, "mode=0755");
    if (chdir("/rootfs") != 0) die("chdir /rootfs");
    if (mount(".", "/", NULL, MS_MOVE, NULL) != 0) die("move /rootfs to /");
    if (chroot(".") != 0) die("chroot");
    if (chdir("/") != 0) die("chdir /");
}

int main(void) {
    if (getpid() != 1) {
        fputs("enclave-init: must run as PID 1 of the enclave\n", stderr);
        return 2;
    }
    mount_or_die("dev", "/dev", "devtmpfs", MS_NOSUID, NULL);
    int console = open("/dev/console", O_RDWR);
    if (console >= 0) {
        dup2(console, 0);
        dup2(console, 1);
        dup2(console, 2);
        if (console > 2) close(console);
    }
    load_modules();
    char **cmd = read_values("/cmd");
    char **env = read_values("/env");
    if (!cmd[0]) {
        errno = EINVAL;
        die("/cmd is empty");
    }
    enter_rootfs();
    /* execvpe searches the command's own PATH, as the image's environment sets it. */
    for (char **e = env; *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0) setenv("PATH", *e + 5, 1);
    say("running %s", cmd[0]);
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        setsid();
        execvpe(cmd[0], cmd, env);
        die(cmd[0]);
    }
    for (;;) {
        int status;
        pid_t pid = wait(&status);
        if (pid < 0 && errno == EINTR) continue;
        if (pid < 0) die("wait");
        if (pid == child) {
            if (WIFEXITED(status)) say("%s exited with status %d", cmd[0], WEXITSTATUS(status));
            else say("%s ended by signal %d", cmd[0], WTERMSIG(status));
            end_vm();
        }
    }
}
