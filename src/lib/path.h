/* SPDX-License-Identifier: MIT */
/*
 * path.h — lexical path handling (no filesystem access).
 */
#pragma once

/* Normalises p lexically: "//", "." and ".." are resolved, ".." above "/" stays at "/", no
 * trailing '/', "/" for the root. A relative p is taken relative to base (an absolute path;
 * NULL means "/"). Returns a new allocation. */
char *path_normalize(const char *base, const char *p);
