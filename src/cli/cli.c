#include "cli/cli.h"

#include <openssl/crypto.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "http/server.h"
#include "store/store.h"

static const char usage[] =
    "usage: kipuka <command> [options]\n"
    "\n"
    "EST (RFC 7030) certificate enrollment server.\n"
    "\n"
    "commands:\n"
    "  init      create a CA, TLS certificate, config and database in a directory\n"
    "  serve     run the server\n"
    "  otp       create, list and revoke one-time passwords for enrollment\n"
    "  cert      list and show issued certificates\n"
    "  admin     operate a running server through its admin API (no database access)\n"
    "  request   list, approve and reject requests held for manual approval\n"
    "  version   print the version\n"
    "\n"
    "Every command takes -c FILE (default " CLI_DEFAULT_CONFIG ") and --help.\n";

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char store[96];

    store_library_versions(store, sizeof(store));
    printf("kipuka %s (%s, libevent %s, %s)\n", KIPUKA_VERSION, OpenSSL_version(OPENSSL_VERSION),
           http_library_version(), store);
    return 0;
}

int cli_main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"init", cmd_init},      {"serve", cmd_serve}, {"otp", cmd_otp},
                {"cert", cmd_cert},      {"admin", cmd_admin}, {"request", cmd_request},
                {"version", cmd_version}};

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(0, NULL);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "kipuka: unknown command \"%s\"\n\n%s", argv[1], usage);
    return 2;
}

struct kp_config *cli_config_load(const char *path)
{
    struct kp_config *cfg = NULL;
    char *err = NULL;
    int level;

    if (config_load(path, &cfg, &err) != KP_OK) {
        fprintf(stderr, "kipuka: %s\n", err);
        free(err);
        return NULL;
    }
    level = log_level_parse(cfg->log_level);
    log_setup((enum log_level)level, (enum log_format)log_format_parse(cfg->log_format));
    return cfg;
}

struct store *cli_store_open(const struct kp_config *cfg)
{
    struct store_opts opts = {.pool_size = cfg->store_pool_size};
    struct store *s = NULL;
    char *shown = NULL;

    if (store_open_opts(cfg->store_url, &opts, &s) != KP_OK) {
        shown = store_url_shown(cfg->store_url); /* never print a password */
        fprintf(stderr, "kipuka: cannot open the store %s\n", shown);
        free(shown);
        return NULL;
    }
    return s;
}

const char *cli_time(int64_t t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

const char *cli_operator(char *buf, size_t len)
{
    struct passwd pw, *res = NULL;
    char tmp[1024];

    if (getpwuid_r(getuid(), &pw, tmp, sizeof(tmp), &res) == 0 && res != NULL)
        snprintf(buf, len, "cli:%s", res->pw_name);
    else
        snprintf(buf, len, "cli:uid%ld", (long)getuid());
    return buf;
}
