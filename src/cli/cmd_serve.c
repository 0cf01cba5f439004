/* kipuka serve: run until SIGTERM/SIGINT (drain, then close the store);
 * SIGHUP re-reads the config and swaps in the new TLS context and EST core. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "est/est.h"
#include "coap/server.h"
#include "core/pool.h"
#include "http/server.h"

#define SERVE_DRAIN_SECONDS 10
#define SERVE_MAX_RELOADS 1024
/* Pool threads for EST-coaps POSTs: they mostly wait on the store. */
#define SERVE_COAP_POOL_THREADS 8

static const char serve_usage[] =
    "usage: kipuka serve [-c FILE]\n"
    "\n"
    "Serves EST over HTTPS (and EST-coaps over DTLS with [coap] enabled)\n"
    "as configured. Signals:\n"
    "  SIGTERM, SIGINT  finish in-flight requests, close the store, exit\n"
    "  SIGHUP           reload the config: TLS certificate and key,\n"
    "                   labels, CAs and profiles, OTP key. The listen\n"
    "                   address, threads and store URL need a restart.\n";

/* Configs stay alive until exit: requests still running on an old EST core
 * after a reload borrow from them. */
struct serve_state {
    struct kp_config *configs[SERVE_MAX_RELOADS];
    size_t nconfigs;
};

static void serve_reload(struct serve_state *s, struct http_server *hs, struct coap_server *cs,
                         struct store *st)
{
    struct kp_config *cfg = NULL;
    struct est_server *est = NULL, *coap_est = NULL;
    char *err = NULL;

    if (s->nconfigs == SERVE_MAX_RELOADS) {
        log_error("reload refused: restart after %d reloads", SERVE_MAX_RELOADS);
        return;
    }
    if (config_load(s->configs[0]->path, &cfg, &err) != KP_OK ||
        est_server_new(cfg, st, &est, &err) != KP_OK ||
        (cs != NULL && est_server_new(cfg, st, &coap_est, &err) != KP_OK)) {
        log_error("reload failed, still serving the previous config: %s", err ? err : "");
        goto fail;
    }
    /* the http server owns est from here on, also when the swap fails */
    if (http_server_reload(hs, cfg, est, &err) != KP_OK) {
        log_error("reload failed, still serving the previous config: %s", err ? err : "");
        est = NULL;
        goto fail;
    }
    if (cs != NULL)
        coap_server_reload(cs, cfg, coap_est); /* owns coap_est */
    s->configs[s->nconfigs++] = cfg;
    log_info("reloaded %s", cfg->path);
    return;
fail:
    est_server_free(coap_est);
    est_server_free(est);
    free(err);
    config_free(cfg);
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = CLI_DEFAULT_CONFIG;
    struct serve_state s = {0};
    struct store *st = NULL;
    struct est_server *est = NULL;
    struct http_server *hs = NULL;
    struct coap_server *cs = NULL;
    struct work_pool *coap_pool = NULL;
    char *err = NULL;
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

    s.configs[0] = cli_config_load(path);
    if (s.configs[0] == NULL)
        return 1;
    s.nconfigs = 1;
    st = cli_store_open(s.configs[0]);
    if (st == NULL)
        goto out;
    if (est_server_new(s.configs[0], st, &est, &err) != KP_OK ||
        http_server_start(s.configs[0], est, &hs, &err) != KP_OK) {
        fprintf(stderr, "kipuka: %s\n", err ? err : "cannot start");
        goto out;
    }
    est = NULL; /* owned by the http server now */
    if (s.configs[0]->coap_enabled) {
        /* its own core over the same store: generations swap apart */
        coap_pool = pool_new(SERVE_COAP_POOL_THREADS);
        if (est_server_new(s.configs[0], st, &est, &err) != KP_OK ||
            coap_server_start(s.configs[0], est, coap_pool, &cs, &err) != KP_OK) {
            fprintf(stderr, "kipuka: %s\n", err ? err : "cannot start EST-coaps");
            goto out;
        }
        est = NULL; /* owned by the coap server now */
    }
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            serve_reload(&s, hs, cs, st);
            continue;
        }
        log_info("signal %d: draining in-flight requests", sig);
        break;
    }
    http_server_stop(hs, SERVE_DRAIN_SECONDS);
    coap_server_stop(cs);
    status = 0;
out:
    coap_server_free(cs);
    pool_free(coap_pool);
    http_server_free(hs);
    est_server_free(est);
    store_close(st);
    for (size_t i = 0; i < s.nconfigs; i++)
        config_free(s.configs[i]);
    free(err);
    if (status == 0)
        log_info("stopped");
    return status;
}
