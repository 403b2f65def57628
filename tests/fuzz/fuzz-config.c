/* SPDX-License-Identifier: MIT */
/*
 * fuzz-config.c — coved's config file (coved/config.c): `key = value` lines written by the
 * operator, then config_finish() (listen address, auth mode, public URL, data dir).
 *
 * The input is the file, read through /proc/self/fd of a memfd. Checked: a failure carries a
 * message naming the file; a config that loads and finishes has a port and an absolute data
 * dir.
 */
#include "fuzz.h"
#include "coved/config.h"
#include "lib/err.h"

#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > FUZZ_MAX_INPUT)
                return 0;
        int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
        FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
        char path[64];
        (void)snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

        struct coved_config c = { 0 };
        struct cove_err *err = NULL;
        config_defaults(&c);
        int r = config_load_file(&c, path, &err);
        if (r < 0) {
                FUZZ_CHECK(err && err->msg && strstr(err->msg, path));
        } else {
                r = config_finish(&c, &err);
                if (r < 0) {
                        FUZZ_CHECK(err && err->msg);
                } else {
                        FUZZ_CHECK(c.port > 0);
                        FUZZ_CHECK(c.data_dir[0] == '/');
                        FUZZ_CHECK(c.public_url && c.node_name && *c.node_name);
                }
        }
        cove_err_free(&err);
        config_release(&c);
        (void)close(fd);
        return 0;
}
