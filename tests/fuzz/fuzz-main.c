/* SPDX-License-Identifier: MIT */
/*
 * fuzz-main.c — replays a harness's corpus without libFuzzer, as a TAP test.
 *
 *   fuzz-<name> [FILE|DIR]...
 *
 * With no arguments it replays tests/fuzz/corpus/<name>/ (FUZZ_CORPUS_DIR, set by meson), so
 * `make test` runs every corpus through its harness; with arguments it replays those files
 * (a crash input from `make fuzz`, say). Each input is copied into an allocation of exactly
 * its size, so that a sanitizer build (build-san/) catches reads past its end. A harness that
 * crashes or aborts (FUZZ_CHECK) kills the process: the name of the input being replayed is
 * on stderr just before.
 *
 * Output: one TAP test per corpus argument ("ok 1 - frame: 23 inputs").
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FUZZ_NAME
#error "FUZZ_NAME must name the harness"
#endif

/* Corpus files bigger than this are refused: a corpus is a set of small inputs. */
#define REPLAY_MAX_FILE (1024 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;

        if (fd < 0) {
                printf("# open '%s': %s\n", path, strerror(errno));
                return -1;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > REPLAY_MAX_FILE) {
                printf("# '%s' is not a regular file of at most %d bytes\n", path, REPLAY_MAX_FILE);
                (void)close(fd);
                return -1;
        }
        size_t n = (size_t)st.st_size;
        uint8_t *data = malloc(n ? n : 1);
        if (!data)
                abort();
        size_t got = 0;
        while (got < n) {
                ssize_t r = read(fd, data + got, n - got);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0) {
                        printf("# read '%s': %s\n", path, r < 0 ? strerror(errno) : "short");
                        free(data);
                        (void)close(fd);
                        return -1;
                }
                got += (size_t)r;
        }
        (void)close(fd);
        fprintf(stderr, "# replaying %s (%zu bytes)\n", path, n);
        (void)LLVMFuzzerTestOneInput(data, n);
        free(data);
        return 0;
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
        return strcmp((*a)->d_name, (*b)->d_name);
}

static int skip_dot(const struct dirent *d)
{
        return d->d_name[0] != '.';
}

/* Replays a file or every file of a directory; returns the number of inputs or -1. */
static long replay(const char *path)
{
        struct stat st;

        if (stat(path, &st) < 0) {
                printf("# '%s': %s\n", path, strerror(errno));
                return -1;
        }
        if (!S_ISDIR(st.st_mode))
                return replay_file(path) < 0 ? -1 : 1;

        struct dirent **names = NULL;
        int n = scandir(path, &names, skip_dot, name_cmp);
        if (n < 0) {
                printf("# scandir '%s': %s\n", path, strerror(errno));
                return -1;
        }
        long count = 0;
        for (int i = 0; i < n; i++) {
                char file[4096];
                int l = snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
                if (count >= 0 && (l < 0 || (size_t)l >= sizeof(file) || replay_file(file) < 0))
                        count = -1;
                else if (count >= 0)
                        count++;
                free(names[i]);
        }
        free(names);
        return count;
}

int main(int argc, char **argv)
{
        static char *def[] = { FUZZ_CORPUS_DIR, NULL };
        char **paths = argc > 1 ? argv + 1 : def;
        int n = argc > 1 ? argc - 1 : 1;
        int failed = 0;

        if (LLVMFuzzerInitialize)
                (void)LLVMFuzzerInitialize(&argc, &argv);
        printf("1..%d\n", n);
        (void)fflush(stdout);
        for (int i = 0; i < n; i++) {
                long c = replay(paths[i]);
                if (c > 0) {
                        printf("ok %d - %s: %ld inputs from %s\n", i + 1, FUZZ_NAME, c, paths[i]);
                } else {
                        printf("not ok %d - %s: %s\n", i + 1, FUZZ_NAME,
                               c == 0 ? "empty corpus" : "could not replay");
                        failed++;
                }
                (void)fflush(stdout);
        }
        return failed ? 1 : 0;
}
