/* kipuka admin: operate a running server through its admin API, so an
 * operator never needs the database file. */
#include <getopt.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/admin_client.h"
#include "cli/cli.h"
#include "core/fsutil.h"
#include "core/xalloc.h"

static const char admin_usage[] =
    "usage: kipuka admin [options] COMMAND [arguments]\n"
    "\n"
    "commands:\n"
    "  health [db|ca]                     server, database or CA health\n"
    "  cas [LABEL]                        the CAs, or one\n"
    "  certs [--label L] [--status valid|revoked] [--subject TEXT] [--limit N] [--offset N]\n"
    "  cert SERIAL                        one certificate, with its PEM\n"
    "  revoke SERIAL [--reason REASON]    revoke (RFC 5280 reason name, e.g. keyCompromise)\n"
    "  otp-create --entity ID [--label L] [--ttl SECONDS] [--uses N]\n"
    "             [--subject DN] [--san TYPE:VALUE]...\n"
    "                                     prints the OTP alone on stdout; --subject and\n"
    "                                     --san bind what it may certify\n"
    "  otp-list                           OTPs and their state\n"
    "  otp-revoke ID                      revoke an OTP\n"
    "  audit [--since UNIXTIME] [--limit N]\n"
    "  requests [--status pending|approved|rejected|issued|expired]\n"
    "  approve ID | reject ID             decide a request held for manual approval\n"
    "\n"
    "options:\n"
    "  --server URL      https://HOST:PORT (default https://localhost:PORT of the config)\n"
    "  --token-file F    bearer token file (default admin.token next to the config)\n"
    "  --cacert F        trust anchors for the server (default the default label's CA)\n"
    "  -c FILE           config file (default " CLI_DEFAULT_CONFIG ")\n"
    "Answers are printed as JSON; exit status 1 on an error answer.\n";

/* More --san than the server takes (32) still reach it, which names the limit. */
#define ADMIN_SANS_MAX 64

struct admin_opts {
    const char *config;
    char *server, *token_file, *cacert;
    const char *label, *status, *subject, *reason, *entity, *since;
    long limit, offset, ttl, uses;
    const char *sans[ADMIN_SANS_MAX]; /* otp-create --san, sent as given */
    size_t nsans;
};

/* Percent-encode s for a query string. */
static char *url_encode(const char *s)
{
    char *out = xmalloc(strlen(s) * 3 + 1), *o = out;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            *o++ = (char)c;
        } else {
            snprintf(o, 4, "%%%02X", c);
            o += 3;
        }
    }
    *o = '\0';
    return out;
}

static void query_add(char **q, const char *name, const char *value)
{
    char *enc, *next;

    if (value == NULL)
        return;
    enc = url_encode(value);
    next = xasprintf("%s%s%s=%s", *q, **q ? "&" : "?", name, enc);
    free(enc);
    free(*q);
    *q = next;
}

static void query_add_long(char **q, const char *name, long v)
{
    char num[32];
    if (v < 0)
        return;
    snprintf(num, sizeof(num), "%ld", v);
    query_add(q, name, num);
}

/* Defaults from the config: its port, its token file, its default CA. */
static int admin_defaults(struct admin_opts *o)
{
    struct kp_config *cfg = cli_config_load(o->config);
    const struct label_cfg *l;

    if (cfg == NULL)
        return -1;
    if (o->server == NULL)
        o->server = xasprintf("https://localhost:%ld", cfg->port);
    if (o->token_file == NULL)
        o->token_file = fs_path_join(cfg->dir, "admin.token");
    l = cfg->nlabels > 0 ? &cfg->labels[0] : NULL;
    if (o->cacert == NULL && l != NULL)
        o->cacert = xstrdup(l->ca_chain != NULL && l->ca_chain[0] ? l->ca_chain : l->ca_cert);
    config_free(cfg);
    if (o->cacert == NULL) {
        fprintf(stderr, "kipuka: --cacert is needed\n");
        return -1;
    }
    return 0;
}

static char *token_read(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[512];
    char *tok = NULL;

    if (f == NULL) {
        fprintf(stderr, "kipuka: cannot read the admin token %s\n", path);
        return NULL;
    }
    if (fgets(buf, sizeof(buf), f) != NULL) {
        buf[strcspn(buf, "\r\n")] = '\0';
        if (buf[0] != '\0')
            tok = xstrdup(buf);
    }
    fclose(f);
    OPENSSL_cleanse(buf, sizeof(buf));
    if (tok == NULL)
        fprintf(stderr, "kipuka: %s is empty\n", path);
    return tok;
}

/* Send, print the JSON answer; 0 on 2xx. otp-create prints only the token
 * on stdout (details on stderr) so scripts can capture it. */
static int admin_send(struct admin_opts *o, const char *method, const char *path, const char *json,
                      bool token_only)
{
    char *token = token_read(o->token_file), *url;
    struct admin_reply r;
    json_t *j;
    int status = 1;

    if (token == NULL)
        return 1;
    url = xasprintf("%s%s", o->server, path);
    if (admin_client_call(method, url, o->cacert, token, json, &r) == KP_OK) {
        j = json_loadb(r.body, r.body_len, 0, NULL);
        if (r.status >= 200 && r.status < 300) {
            status = 0;
            if (token_only && json_string_value(json_object_get(j, "token")) != NULL) {
                printf("%s\n", json_string_value(json_object_get(j, "token")));
                json_object_del(j, "token");
                json_dumpf(j, stderr, JSON_INDENT(2));
                fputc('\n', stderr);
            } else if (j != NULL) {
                json_dumpf(j, stdout, JSON_INDENT(2));
                putchar('\n');
            } else {
                fwrite(r.body, 1, r.body_len, stdout);
            }
        } else {
            const char *msg = json_string_value(json_object_get(j, "message"));
            fprintf(stderr, "kipuka: %d %s\n", r.status, msg != NULL ? msg : r.body);
        }
        json_decref(j);
        free(r.body);
    }
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    free(url);
    return status;
}

static int admin_run(struct admin_opts *o, int argc, char **argv)
{
    const char *cmd = argv[0];
    char *path = NULL, *q = xstrdup(""), *json = NULL;
    int status = 2;

    if (strcmp(cmd, "health") == 0 && argc <= 2) {
        path = xasprintf("/admin/health%s%s", argc == 2 ? "/" : "", argc == 2 ? argv[1] : "");
        status = admin_send(o, "GET", path, NULL, false);
    } else if (strcmp(cmd, "cas") == 0 && argc <= 2) {
        char *enc = argc == 2 ? url_encode(argv[1]) : NULL;
        path = xasprintf("/admin/cas%s%s", enc ? "/" : "", enc ? enc : "");
        free(enc);
        status = admin_send(o, "GET", path, NULL, false);
    } else if (strcmp(cmd, "certs") == 0 && argc == 1) {
        query_add(&q, "label", o->label);
        query_add(&q, "status", o->status);
        query_add(&q, "subject", o->subject);
        query_add_long(&q, "limit", o->limit);
        query_add_long(&q, "offset", o->offset);
        path = xasprintf("/admin/certs%s", q);
        status = admin_send(o, "GET", path, NULL, false);
    } else if (strcmp(cmd, "cert") == 0 && argc == 2) {
        char *enc = url_encode(argv[1]);
        path = xasprintf("/admin/certs/%s", enc);
        free(enc);
        status = admin_send(o, "GET", path, NULL, false);
    } else if (strcmp(cmd, "revoke") == 0 && argc == 2) {
        char *enc = url_encode(argv[1]);
        json_t *body = o->reason ? json_pack("{s:s}", "reason", o->reason) : json_object();
        path = xasprintf("/admin/certs/%s/revoke", enc);
        json = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        free(enc);
        status = admin_send(o, "POST", path, json, false);
    } else if (strcmp(cmd, "otp-create") == 0 && argc == 1 && o->entity != NULL) {
        json_t *body = json_pack("{s:s}", "entity_id", o->entity);
        if (o->label)
            json_object_set_new(body, "label", json_string(o->label));
        if (o->ttl > 0)
            json_object_set_new(body, "ttl", json_integer(o->ttl));
        if (o->uses > 0)
            json_object_set_new(body, "uses", json_integer(o->uses));
        if (o->subject)
            json_object_set_new(body, "subject", json_string(o->subject));
        if (o->nsans > 0) {
            json_t *sans = json_array();
            for (size_t i = 0; i < o->nsans; i++)
                json_array_append_new(sans, json_string(o->sans[i]));
            json_object_set_new(body, "sans", sans);
        }
        json = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        status = admin_send(o, "POST", "/admin/otp/generate", json, true);
    } else if (strcmp(cmd, "otp-list") == 0 && argc == 1) {
        status = admin_send(o, "GET", "/admin/otp", NULL, false);
    } else if (strcmp(cmd, "otp-revoke") == 0 && argc == 2) {
        char *enc = url_encode(argv[1]);
        path = xasprintf("/admin/otp/%s", enc);
        free(enc);
        status = admin_send(o, "DELETE", path, NULL, false);
    } else if (strcmp(cmd, "requests") == 0 && argc == 1) {
        query_add(&q, "status", o->status);
        path = xasprintf("/admin/requests%s", q);
        status = admin_send(o, "GET", path, NULL, false);
    } else if ((strcmp(cmd, "approve") == 0 || strcmp(cmd, "reject") == 0) && argc == 2) {
        char *enc = url_encode(argv[1]);
        path = xasprintf("/admin/requests/%s/%s", enc, cmd);
        free(enc);
        status = admin_send(o, "POST", path, "{}", false);
    } else if (strcmp(cmd, "audit") == 0 && argc == 1) {
        query_add(&q, "since", o->since);
        query_add_long(&q, "limit", o->limit);
        path = xasprintf("/admin/audit%s", q);
        status = admin_send(o, "GET", path, NULL, false);
    } else {
        fputs(admin_usage, stderr);
    }
    free(path);
    free(q);
    free(json);
    return status;
}

int cmd_admin(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, 'S'}, {"token-file", required_argument, NULL, 'T'},
        {"cacert", required_argument, NULL, 'A'}, {"label", required_argument, NULL, 'l'},
        {"status", required_argument, NULL, 's'}, {"subject", required_argument, NULL, 'j'},
        {"limit", required_argument, NULL, 'n'},  {"offset", required_argument, NULL, 'o'},
        {"reason", required_argument, NULL, 'r'}, {"entity", required_argument, NULL, 'e'},
        {"ttl", required_argument, NULL, 't'},    {"uses", required_argument, NULL, 'u'},
        {"since", required_argument, NULL, 'i'},  {"san", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    struct admin_opts o = {.config = CLI_DEFAULT_CONFIG, .limit = -1, .offset = -1};
    int c, status;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o.config = optarg;
            break;
        case 'S':
            free(o.server);
            o.server = xstrdup(optarg);
            break;
        case 'T':
            free(o.token_file);
            o.token_file = xstrdup(optarg);
            break;
        case 'A':
            free(o.cacert);
            o.cacert = xstrdup(optarg);
            break;
        case 'l':
            o.label = optarg;
            break;
        case 's':
            o.status = optarg;
            break;
        case 'j':
            o.subject = optarg;
            break;
        case 'n':
            o.limit = atol(optarg);
            break;
        case 'o':
            o.offset = atol(optarg);
            break;
        case 'r':
            o.reason = optarg;
            break;
        case 'e':
            o.entity = optarg;
            break;
        case 't':
            o.ttl = atol(optarg);
            break;
        case 'u':
            o.uses = atol(optarg);
            break;
        case 'i':
            o.since = optarg;
            break;
        case 'a':
            if (o.nsans == ADMIN_SANS_MAX) {
                fprintf(stderr, "kipuka: at most %d --san\n", ADMIN_SANS_MAX);
                free(o.server);
                free(o.token_file);
                free(o.cacert);
                return 2;
            }
            o.sans[o.nsans++] = optarg;
            break;
        case 'h':
            fputs(admin_usage, stdout);
            return 0;
        default:
            fputs(admin_usage, stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        fputs(admin_usage, stderr);
        return 2;
    }
    status = admin_defaults(&o) == 0 ? admin_run(&o, argc - optind, argv + optind) : 1;
    free(o.server);
    free(o.token_file);
    free(o.cacert);
    return status;
}
