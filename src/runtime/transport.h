/* A transport as `kipuka serve` starts and stops it: one row per transport
 * in cli/cmd_serve.c. A new transport is a folder under src/ exporting one
 * of these, plus its row and its meson lines. */
#ifndef KP_TRANSPORT_H
#define KP_TRANSPORT_H

#include "core/err.h"

struct runtime;

struct transport_ops {
    const char *name;
    /* Start serving on rt (borrowed, outlives the handle). *handle may be
     * left NULL when the config does not turn the transport on. On failure
     * *errmsg (caller frees) says why. */
    enum kp_err (*start)(struct runtime *rt, void **handle, char **errmsg);
    /* Stop taking requests, finish those running (up to grace seconds). */
    void (*stop)(void *handle, int grace_seconds);
    /* Free; accepts NULL. */
    void (*free)(void *handle);
};

#endif
