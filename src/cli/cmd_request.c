/* kipuka request list|show|approve|reject: requests held for manual approval
 * (label approval = "manual"), acting on the store like `kipuka otp`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/xalloc.h"
#include "est/approval.h"

static const char request_usage[] =
    "usage: kipuka request list [--status pending|approved|rejected|issued|expired]\n"
    "       kipuka request show ID\n"
    "       kipuka request approve ID\n"
    "       kipuka request reject ID\n"
    "\n"
    "Requests to labels with approval = \"manual\" wait here (the client gets 202\n"
    "with Retry-After). Once approved, the client's next repeat (same key, subject\n"
    "and SANs) gets its certificate; once rejected, 403. Decisions are audited.\n"
    "`show` prints every SAN, the key and EKUs the certificate would carry, and\n"
    "who asked.\n"
    "  --status S   only requests in this state (default: all)\n"
    "  -c FILE      config file (default " CLI_DEFAULT_CONFIG ")\n";

#define REQUEST_ROW "%-6s %-9s %-14s %-14s %-20s %-20s %-5s %-24s %-9s %-16s %s  %s\n"

/* "" as "-": a row held before these were recorded, or a request without SANs. */
static const char *request_or_dash(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "-";
}

static void request_print_row(const struct store_pending *p, void *arg)
{
    char id[24], c[32], e[32], *sans = xstrdup(request_or_dash(p->sans)), *nl;
    int64_t now = *(int64_t *)arg;

    snprintf(id, sizeof(id), "%lld", (long long)p->id);
    /* one SAN a line in the store; one row a request here */
    while ((nl = strchr(sans, '\n')) != NULL)
        *nl = ',';
    printf(REQUEST_ROW, id, approval_state(p, now), p->label, p->operation,
           cli_time(p->created_at, c, sizeof(c)), cli_time(p->expires_at, e, sizeof(e)),
           p->auth_method, p->requester, request_or_dash(p->key_type), request_or_dash(p->ekus),
           p->subject, sans);
    free(sans);
}

/* Everything an operator decides on, one field a line, one SAN a line. */
static void request_print_one(const struct store_pending *p, int64_t now)
{
    char t[32];
    const char *san = p->sans, *end;

    printf("id:          %lld\n", (long long)p->id);
    printf("state:       %s\n", approval_state(p, now));
    printf("label:       %s\n", p->label);
    printf("operation:   %s\n", p->operation);
    printf("requester:   %s\n", p->requester);
    printf("auth:        %s\n", p->auth_method);
    printf("subject:     %s\n", p->subject);
    if (san == NULL || *san == '\0')
        printf("san:         -\n");
    for (; san != NULL && *san != '\0'; san = *end ? end + 1 : end) {
        end = san + strcspn(san, "\n");
        printf("san:         %.*s\n", (int)(end - san), san);
    }
    printf("key:         %s\n", request_or_dash(p->key_type));
    printf("eku:         %s\n", request_or_dash(p->ekus));
    printf("fingerprint: %s\n", request_or_dash(p->fingerprint));
    printf("created:     %s\n", cli_time(p->created_at, t, sizeof(t)));
    printf("expires:     %s\n", cli_time(p->expires_at, t, sizeof(t)));
    if (p->decided_at > 0)
        printf("decided:     %s by %s\n", cli_time(p->decided_at, t, sizeof(t)),
               request_or_dash(p->decided_by));
    if (p->serial != NULL)
        printf("serial:      %s\n", p->serial);
}

static long request_parse_id(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 1 || v > 0x7fffffffL)
        return -1;
    return v;
}

int cmd_request(int argc, char **argv)
{
    static const struct option opts[] = {{"status", required_argument, NULL, 's'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static const char *const statuses[] = {"pending", "approved", "rejected", "issued", "expired"};
    const char *path = CLI_DEFAULT_CONFIG, *status = NULL, *sub;
    struct kp_config *cfg = NULL;
    struct store *st = NULL;
    int rc = 2, c;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(request_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    sub = argv[1];
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            status = optarg;
            break;
        case 'c':
            path = optarg;
            break;
        case 'h':
            fputs(request_usage, stdout);
            return 0;
        default:
            fputs(request_usage, stderr);
            return 2;
        }
    }
    if (status != NULL) {
        size_t i;
        for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
            if (strcmp(status, statuses[i]) == 0)
                break;
        if (i == sizeof(statuses) / sizeof(statuses[0])) {
            fprintf(stderr, "kipuka: unknown --status \"%s\"\n", status);
            return 2;
        }
    }
    cfg = cli_config_load(path);
    if (cfg == NULL)
        return 1;
    if (strcmp(sub, "list") == 0) {
        int64_t now = (int64_t)time(NULL);
        st = cli_store_open(cfg);
        if (st == NULL) {
            rc = 1;
            goto out;
        }
        printf(REQUEST_ROW, "ID", "STATE", "LABEL", "OPERATION", "CREATED", "EXPIRES", "AUTH",
               "REQUESTER", "KEY", "EKU", "SUBJECT", "SANS");
        rc = store_pending_list(st, status, now, request_print_row, &now) == KP_OK ? 0 : 1;
    } else if (strcmp(sub, "show") == 0) {
        long id = optind + 1 < argc ? request_parse_id(argv[optind + 1]) : -1;
        struct store_pending *p = NULL;
        enum kp_err e;
        if (id < 1) {
            fprintf(stderr, "kipuka: request show needs a numeric request id (see request list)\n");
            goto out;
        }
        st = cli_store_open(cfg);
        if (st == NULL) {
            rc = 1;
            goto out;
        }
        e = store_pending_get(st, id, &p);
        if (e == KP_OK)
            request_print_one(p, (int64_t)time(NULL));
        else if (e == KP_ERR_NOT_FOUND)
            fprintf(stderr, "kipuka: no request with id %ld\n", id);
        else
            fprintf(stderr, "kipuka: store error\n");
        store_pending_free(p);
        rc = e == KP_OK ? 0 : 1;
    } else if (strcmp(sub, "approve") == 0 || strcmp(sub, "reject") == 0) {
        bool approve = sub[0] == 'a';
        long id = optind + 1 < argc ? request_parse_id(argv[optind + 1]) : -1;
        char by[96];
        enum kp_err e;
        if (id < 1) {
            fprintf(stderr, "kipuka: request %s needs a numeric request id (see request list)\n",
                    sub);
            goto out;
        }
        st = cli_store_open(cfg);
        if (st == NULL) {
            rc = 1;
            goto out;
        }
        e = approval_decide(st, id, approve, cli_operator(by, sizeof(by)), "cli");
        if (e == KP_ERR_NOT_FOUND)
            fprintf(stderr, "kipuka: no pending request with id %ld (decided, issued or expired)\n",
                    id);
        else if (e == KP_OK)
            fprintf(stderr, "request %ld %s\n", id, approve ? "approved" : "rejected");
        else
            fprintf(stderr, "kipuka: store error\n");
        rc = e == KP_OK ? 0 : 1;
    } else {
        fprintf(stderr, "kipuka: unknown request command \"%s\"\n\n%s", sub, request_usage);
    }
out:
    store_close(st);
    config_free(cfg);
    return rc;
}
