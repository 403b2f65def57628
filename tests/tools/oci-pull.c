/* SPDX-License-Identifier: MIT */
/*
 * oci-pull — drives the build plane's OCI library from the command line, for the integration
 * tests (tests/integration/test_oci_pull.py) and the benchmark:
 *
 *   oci-pull --data-dir DIR [--mirror HOST=URL[,only]]… [--username U --password-env VAR]
 *            [--no-unpack] [--flatten] REF
 *
 * pulls REF into DIR/blobs and unpacks its layers into DIR/layers, then prints one JSON object:
 * {"name", "manifestDigest", "layers": [{"digest", "size", "key", "path"}], "config": {…},
 *  "log": [progress lines]} (and "flat": the path of all layers flattened into one, with
 * --flatten). On failure: "error: <message>" on stderr, exit status 1.
 * The password is read from an environment variable so that it never appears in argv.
 */
#include "build/blobstore.h"
#include "build/flatten.h"
#include "build/layerstore.h"
#include "build/pull.h"
#include "build/registry.h"
#include "lib/macro.h"

#include <getopt.h>
#include <sys/stat.h>
#include <jansson.h>

#include "lib/banned.h"

static json_t *log_lines;

static void on_log(void *ud, const char *msg)
{
        (void)ud;
        json_array_append_new(log_lines, json_string(msg));
}

static json_t *strv_json(char **v)
{
        json_t *a = json_array();
        for (; v && *v; v++)
                json_array_append_new(a, json_string(*v));
        return a;
}

int main(int argc, char **argv)
{
        const char *data_dir = NULL, *username = NULL, *password_env = NULL;
        struct registry_mirror mirrors[8];
        size_t n_mirrors = 0;
        bool unpack = true, flatten = false;
        struct cove_err *err = NULL;
        static const struct option opts[] = {
                { "data-dir", required_argument, NULL, 'd' },
                { "mirror", required_argument, NULL, 'm' },
                { "username", required_argument, NULL, 'u' },
                { "password-env", required_argument, NULL, 'p' },
                { "no-unpack", no_argument, NULL, 'n' },
                { "flatten", no_argument, NULL, 'f' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'd':
                        data_dir = optarg;
                        break;
                case 'm':
                        if (n_mirrors == ARRAY_SIZE(mirrors) ||
                            registry_mirror_parse(optarg, &mirrors[n_mirrors], &err) < 0) {
                                fprintf(stderr, "error: %s\n", err ? err->msg : "too many mirrors");
                                return 2;
                        }
                        n_mirrors++;
                        break;
                case 'u':
                        username = optarg;
                        break;
                case 'p':
                        password_env = optarg;
                        break;
                case 'n':
                        unpack = false;
                        break;
                case 'f':
                        flatten = true;
                        break;
                default:
                        return 2;
                }
        }
        if (!data_dir || optind + 1 != argc) {
                fprintf(stderr, "usage: oci-pull --data-dir DIR [options] REF\n");
                return 2;
        }

        cleanup_free char *blobs_dir = xasprintf("%s/blobs", data_dir);
        cleanup_free char *layers_dir = xasprintf("%s/layers", data_dir);
        struct blob_store *blobs = NULL;
        struct layer_store *layers = NULL;
        struct oci_image *img = NULL;
        int r, rc = 1;

        log_lines = json_array();
        if (mkdir(data_dir, 0700) < 0 && errno != EEXIST) {
                fprintf(stderr, "error: mkdir '%s': %s\n", data_dir, strerror(errno));
                goto out;
        }
        if (blob_store_open(blobs_dir, &blobs, &err) < 0 ||
            (unpack && layer_store_open(layers_dir, &layers, &err) < 0)) {
                fprintf(stderr, "error: %s\n", err->msg);
                goto out;
        }
        struct oci_pull_opts po = {
                .blobs = blobs,
                .registry = { .mirrors = mirrors,
                              .n_mirrors = n_mirrors,
                              .username = username,
                              .password = password_env ? getenv(password_env) : NULL },
                .log = on_log,
        };
        r = oci_pull(argv[optind], &po, &img, &err);
        if (r >= 0 && unpack)
                r = oci_image_unpack(img, blobs, layers, NULL, on_log, NULL, &err);
        if (r < 0) {
                fprintf(stderr, "error: %s\n", err ? err->msg : "failed");
                for (size_t i = 0; i < json_array_size(log_lines); i++)
                        fprintf(stderr, "log: %s\n",
                                json_string_value(json_array_get(log_lines, i)));
                goto out;
        }

        char flat_key[65] = "";
        if (flatten && unpack) {
                char **keys = xzalloc((img->n_layers + 1) * sizeof(char *));
                for (size_t i = 0; i < img->n_layers; i++)
                        keys[i] = img->layers[i].key;
                r = layer_flatten(layers, keys, img->n_layers, flat_key, NULL, &err);
                free(keys);
                if (r < 0) {
                        fprintf(stderr, "error: %s\n", err->msg);
                        goto out;
                }
        }
        json_t *ls = json_array();
        for (size_t i = 0; i < img->n_layers; i++) {
                cleanup_free char *path =
                        unpack ? layer_store_path(layers, img->layers[i].key) : NULL;
                json_array_append_new(ls, json_pack("{s:s,s:I,s:s,s:s?}", "digest",
                                                    img->layers[i].digest, "size",
                                                    (json_int_t)img->layers[i].size, "key",
                                                    img->layers[i].key, "path", path));
        }
        struct oci_config *cfg = img->config;
        json_t *out =
                json_pack("{s:s,s:s,s:o,s:{s:o,s:s?,s:s?,s:o,s:o,s:i},s:o}", "name", img->name,
                          "manifestDigest", img->manifest_digest, "layers", ls, "config", "env",
                          strv_json(cfg->env), "workdir", cfg->workdir, "user", cfg->user, "cmd",
                          cfg->cmd ? strv_json(cfg->cmd) : json_null(), "entrypoint",
                          cfg->entrypoint ? strv_json(cfg->entrypoint) : json_null(), "port",
                          cfg->port, "log", json_incref(log_lines));
        if (flat_key[0]) {
                cleanup_free char *fp = layer_store_path(layers, flat_key);
                json_object_set_new(out, "flat", json_string(fp));
        }
        char *s = json_dumps(out, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(out);
        rc = 0;
out: /* everything freed on every path, so that LeakSanitizer sees the library's leaks only */
        cove_err_free(&err);
        json_decref(log_lines);
        oci_image_free(img);
        blob_store_free(blobs);
        layer_store_free(layers);
        for (size_t i = 0; i < n_mirrors; i++)
                registry_mirror_free(&mirrors[i]);
        return rc;
}
