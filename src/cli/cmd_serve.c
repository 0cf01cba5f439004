/* kipuka serve: run until SIGTERM/SIGINT (drain, then close the store);
 * SIGHUP re-reads the config and swaps in a new generation (runtime.c). */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "coap/server.h"
#include "http/server.h"
#include "runtime/runtime.h"

#define SERVE_DRAIN_SECONDS 10

/* Every transport `kipuka serve` runs, started in this order and stopped in
 * the reverse. A new transport: its folder, its meson lines, one row here. */
static const struct transport_ops *const serve_transports[] = {
    &http_transport,
    &coap_transport,
};
#define SERVE_NTRANSPORTS (sizeof(serve_transports) / sizeof(serve_transports[0]))

static const char serve_usage[] =
    "usage: kipuka serve [-c FILE]\n"
    "\n"
    "Serves EST over HTTPS as configured. Signals:\n"
    "  SIGTERM, SIGINT  finish in-flight requests, close the store, exit\n"
    "  SIGHUP           reload the config: TLS certificate and key,\n"
    "                   labels, CAs and profiles, OTP key. The listen\n"
    "                   address, threads, store and auth_fail_window\n"
    "                   need a restart.\n";

static void serve_reload(struct runtime *rt, const char *path)
{
    char *err = NULL;

    if (runtime_reload(rt, &err) != KP_OK) {
        log_error("reload failed, still serving the previous config: %s", err ? err : "");
        free(err);
        return;
    }
    log_info("reloaded %s", path);
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = CLI_DEFAULT_CONFIG;
    struct kp_config *cfg = NULL;
    struct runtime *rt = NULL;
    void *handles[SERVE_NTRANSPORTS] = {NULL};
    size_t started = 0;
    char *err = NULL, *cfg_path = NULL;
    const char *why = NULL; /* why serve could not start, said last */
    sigset_t set;
    int status = 1, c, sig = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            fputs(serve_usage, stdout);
            return 0;
        default:
            fputs(serve_usage, stderr);
            return 2;
        }
    }
    /* Block before any thread starts so only sigwait below sees them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    cfg = cli_config_load(path);
    if (cfg == NULL)
        return 1;
    cfg_path = xstrdup(cfg->path);
    /* From here on no thread waits for stderr (docs/logging.md). */
    log_async_start();
    if (runtime_new(cfg, &rt, &err) != KP_OK) {
        why = err ? err : "cannot start";
        goto out;
    }
    for (; started < SERVE_NTRANSPORTS; started++) {
        const struct transport_ops *t = serve_transports[started];
        if (t->start(rt, &handles[started], &err) != KP_OK) {
            why = err ? err : t->name;
            goto out;
        }
    }
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            serve_reload(rt, cfg_path);
            continue;
        }
        log_info("signal %d: draining in-flight requests", sig);
        break;
    }
    for (size_t i = started; i-- > 0;)
        serve_transports[i]->stop(handles[i], SERVE_DRAIN_SECONDS);
    status = 0;
out:
    /* every transport lets go of its generations before the runtime goes */
    for (size_t i = started; i-- > 0;)
        serve_transports[i]->free(handles[i]);
    runtime_free(rt);
    if (status == 0)
        log_info("stopped");
    /* every queued line is written before the exit, and before why: the
     * threads that could log are gone by now */
    log_async_stop();
    if (why != NULL)
        fprintf(stderr, "kipuka: %s\n", why);
    free(cfg_path);
    free(err);
    return status;
}
