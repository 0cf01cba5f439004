/* kipuka request list|approve|reject: requests held for manual approval
 * (label approval = "manual"), acting on the store like `kipuka otp`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "est/approval.h"

static const char request_usage[] =
    "usage: kipuka request list [--status pending|approved|rejected|issued|expired]\n"
    "       kipuka request approve ID\n"
    "       kipuka request reject ID\n"
    "\n"
    "Requests to labels with approval = \"manual\" wait here (the client gets 202\n"
    "with Retry-After). Once approved, the client's next identical request gets its\n"
    "certificate; once rejected, 403. Decisions are audited.\n"
    "  --status S   only requests in this state (default: all)\n"
    "  -c FILE      config file (default " CLI_DEFAULT_CONFIG ")\n";

static void request_print_row(const struct store_pending *p, void *arg)
{
    char c[32], e[32];
    int64_t now = *(int64_t *)arg;

    printf("%-6lld %-9s %-14s %-14s %-20s %-20s %-24s %s\n", (long long)p->id,
           approval_state(p, now), p->label, p->operation, cli_time(p->created_at, c, sizeof(c)),
           cli_time(p->expires_at, e, sizeof(e)), p->requester, p->subject);
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
        printf("%-6s %-9s %-14s %-14s %-20s %-20s %-24s %s\n", "ID", "STATE", "LABEL", "OPERATION",
               "CREATED", "EXPIRES", "REQUESTER", "SUBJECT");
        rc = store_pending_list(st, status, now, request_print_row, &now) == KP_OK ? 0 : 1;
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
