/* kipuka otp create|list|revoke: one-time passwords for first enrollment. */
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/otp.h"
#include "auth/otpbind.h"
#include "cli/cli.h"
#include "core/xalloc.h"

#define OTP_MAX_COUNT 100000
#define OTP_MAX_USES 1000000
#define OTP_MAX_TTL (366L * 86400)

static const char otp_usage[] =
    "usage: kipuka otp create --entity ID [--label L] [--ttl 24h] [--uses N] [--count N]\n"
    "                         [--subject DN] [--san TYPE:VALUE]...\n"
    "       kipuka otp list\n"
    "       kipuka otp revoke ID\n"
    "\n"
    "create prints each new OTP alone on a line on stdout (details go to stderr);\n"
    "it is shown only once: the store keeps only a keyed hash.\n"
    "  --entity ID   the identity that will use it as the HTTP Basic user name\n"
    "  --label L     only valid for this EST label (default: any label)\n"
    "  --ttl T       lifetime: 90s, 30m, 24h, 7d (default otp.default_ttl)\n"
    "  --uses N      enrollments allowed (default otp.default_uses)\n"
    "  --count N     how many OTPs to create for the entity (default 1)\n"
    "  --subject DN  the only subject its CSRs may carry, e.g. \"/CN=dev-1.example.com/O=Ex\"\n"
    "  --san T:V     a subjectAltName its CSRs may carry (DNS, IP, email, URI; repeat it);\n"
    "                CSRs may carry only these\n"
    "  -c FILE       config file (default " CLI_DEFAULT_CONFIG ")\n";

static long otp_parse_count(const char *s, long max)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 1 || v > max)
        return -1;
    return v;
}

/* What an OTP will be bound to: canonical forms (otpbind.h), NULL when none. */
struct otp_binds {
    char *subject;
    char *sans;
};

static int otp_create(struct kp_config *cfg, struct store *st, const char *entity,
                      const char *label, long ttl, long uses, long count, const struct otp_binds *b)
{
    unsigned char key[OTP_KEY_LEN], hash[STORE_OTP_HASH_LEN];
    char otp[OTP_LEN + 1], when[32];
    int status = 1;

    if (otp_key_load(cfg->otp_key_file, key) != KP_OK) {
        fprintf(stderr, "kipuka: cannot load the OTP key %s\n", cfg->otp_key_file);
        return 1;
    }
    for (long i = 0; i < count; i++) {
        struct store_otp row = {
            .entity_id = (char *)entity,
            .label = (char *)label,
            .created_at = time(NULL),
            .uses_left = uses,
            .uses_total = uses,
            .subject = b->subject, /* borrowed */
            .sans = b->sans,       /* borrowed */
        };
        int64_t id = 0;
        row.expires_at = row.created_at + ttl;
        if (otp_generate(otp) != KP_OK)
            goto out;
        otp_hash(key, otp, OTP_LEN, hash);
        if (store_otp_insert(st, hash, &row, &id) != KP_OK) {
            fprintf(stderr, "kipuka: cannot store the OTP\n");
            goto out;
        }
        printf("%s\n", otp);
        fprintf(stderr, "otp id=%lld entity=%s label=%s uses=%ld expires=%s%s%s%s%s\n",
                (long long)id, entity, label ? label : "*", uses,
                cli_time(row.expires_at, when, sizeof(when)), b->subject ? " subject=" : "",
                b->subject ? b->subject : "", b->sans ? " sans=" : "", b->sans ? b->sans : "");
    }
    fflush(stdout);
    status = 0;
out:
    OPENSSL_cleanse(otp, sizeof(otp));
    OPENSSL_cleanse(key, sizeof(key));
    return status;
}

static void otp_print_row(const struct store_otp *o, void *arg)
{
    char c[32], e[32];
    const char *state = o->revoked                        ? "revoked"
                        : o->expires_at <= *(time_t *)arg ? "expired"
                        : o->uses_left <= 0               ? "used"
                                                          : "active";
    printf("%-6lld %-24s %-16s %-20s %-20s %lld/%-4lld %s%s%s%s%s %s\n", (long long)o->id,
           o->entity_id, o->label ? o->label : "*", cli_time(o->created_at, c, sizeof(c)),
           cli_time(o->expires_at, e, sizeof(e)), (long long)o->uses_left, (long long)o->uses_total,
           o->subject ? "subject=" : "", o->subject ? o->subject : "",
           o->subject && o->sans ? " " : "", o->sans ? "sans=" : "",
           o->sans      ? o->sans
           : o->subject ? ""
                        : "-",
           state);
}

int cmd_otp(int argc, char **argv)
{
    static const struct option opts[] = {
        {"entity", required_argument, NULL, 'e'},  {"label", required_argument, NULL, 'l'},
        {"ttl", required_argument, NULL, 't'},     {"uses", required_argument, NULL, 'u'},
        {"count", required_argument, NULL, 'n'},   {"config", required_argument, NULL, 'c'},
        {"subject", required_argument, NULL, 's'}, {"san", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    const char *path = CLI_DEFAULT_CONFIG, *entity = NULL, *label = NULL, *sub;
    const char *ttl_s = NULL, *uses_s = NULL, *count_s = NULL, *subject_s = NULL;
    const char *sans[OTPBIND_SANS_MAX + 1];
    size_t nsans = 0;
    struct otp_binds binds = {NULL, NULL};
    struct kp_config *cfg = NULL;
    struct store *st = NULL;
    int status = 2, c;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(otp_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    sub = argv[1];
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            entity = optarg;
            break;
        case 'l':
            label = optarg;
            break;
        case 't':
            ttl_s = optarg;
            break;
        case 'u':
            uses_s = optarg;
            break;
        case 'n':
            count_s = optarg;
            break;
        case 's':
            subject_s = optarg;
            break;
        case 'a':
            if (nsans > OTPBIND_SANS_MAX) {
                fprintf(stderr, "kipuka: at most %d --san\n", OTPBIND_SANS_MAX);
                return 2;
            }
            sans[nsans++] = optarg;
            break;
        case 'c':
            path = optarg;
            break;
        case 'h':
            fputs(otp_usage, stdout);
            return 0;
        default:
            fputs(otp_usage, stderr);
            return 2;
        }
    }
    cfg = cli_config_load(path);
    if (cfg == NULL)
        return 1;
    if (strcmp(sub, "create") == 0) {
        long ttl = ttl_s ? config_parse_duration(ttl_s) : cfg->otp_default_ttl;
        long uses = uses_s ? otp_parse_count(uses_s, OTP_MAX_USES) : cfg->otp_default_uses;
        long count = count_s ? otp_parse_count(count_s, OTP_MAX_COUNT) : 1;
        const char *why;
        if (entity == NULL) {
            fprintf(stderr, "kipuka: --entity ID is required\n");
            goto out;
        }
        why = otpbind_entity_check(entity);
        if (why != NULL) {
            fprintf(stderr, "kipuka: --entity: %s\n", why);
            goto out;
        }
        if (ttl < 1 || ttl > OTP_MAX_TTL) {
            fprintf(stderr,
                    "kipuka: --ttl must be a duration from 1s to 366d (90s, 30m, 24h, 7d)\n");
            goto out;
        }
        if (uses < 1) {
            fprintf(stderr, "kipuka: --uses must be a whole number from 1 to %d\n", OTP_MAX_USES);
            goto out;
        }
        if (count < 1) {
            fprintf(stderr, "kipuka: --count must be a whole number from 1 to %d\n", OTP_MAX_COUNT);
            goto out;
        }
        if (subject_s != NULL) {
            why = otpbind_subject_parse(subject_s, &binds.subject);
            if (why != NULL) {
                fprintf(stderr, "kipuka: --subject: %s\n", why);
                goto out;
            }
        }
        if (nsans > 0) {
            why = otpbind_sans_parse(sans, nsans, &binds.sans);
            if (why != NULL) {
                fprintf(stderr, "kipuka: --san: %s\n", why);
                goto out;
            }
        }
        if (label != NULL && config_label(cfg, label) == NULL) {
            fprintf(stderr, "kipuka: no label \"%s\" in %s\n", label, cfg->path);
            goto out;
        }
        st = cli_store_open(cfg);
        status = st ? otp_create(cfg, st, entity, label, ttl, uses, count, &binds) : 1;
    } else if (strcmp(sub, "list") == 0) {
        time_t now = time(NULL);
        st = cli_store_open(cfg);
        if (st == NULL) {
            status = 1;
            goto out;
        }
        printf("%-6s %-24s %-16s %-20s %-20s %-9s %s %s\n", "ID", "ENTITY", "LABEL", "CREATED",
               "EXPIRES", "USES", "BOUND", "STATE");
        status = store_otp_list(st, otp_print_row, &now) == KP_OK ? 0 : 1;
    } else if (strcmp(sub, "revoke") == 0) {
        long id = optind + 1 < argc ? otp_parse_count(argv[optind + 1], 0x7fffffff) : -1;
        struct store_audit ev = {.event = "otp.revoke", .outcome = "ok", .peer = "cli"};
        char idbuf[24];
        enum kp_err rc;
        if (id < 1) {
            fprintf(stderr, "kipuka: otp revoke needs a numeric OTP id (see otp list)\n");
            goto out;
        }
        snprintf(idbuf, sizeof(idbuf), "%ld", id);
        ev.detail = idbuf;
        st = cli_store_open(cfg);
        if (st == NULL) {
            status = 1;
            goto out;
        }
        rc = store_otp_revoke(st, id, &ev);
        if (rc == KP_ERR_NOT_FOUND)
            fprintf(stderr, "kipuka: no OTP with id %ld\n", id);
        else if (rc == KP_OK)
            fprintf(stderr, "OTP %ld revoked\n", id);
        status = rc == KP_OK ? 0 : 1;
    } else {
        fprintf(stderr, "kipuka: unknown otp command \"%s\"\n\n%s", sub, otp_usage);
    }
out:
    free(binds.subject);
    free(binds.sans);
    store_close(st);
    config_free(cfg);
    return status;
}
