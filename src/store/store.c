/* The store interface: choose a back end by URL scheme, then call through
 * its ops. No SQL here; each back end lives in its own store_<name>.c. */
#include "store/store.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xalloc.h"
#include "store/store_backends.h"

/* The one place to add a back end. */
static const struct store_ops *const store_backends[] = {
    &store_sqlite_ops,
    &store_pg_ops,
};

enum kp_err store_open(const char *url, struct store **out)
{
    return store_open_opts(url, NULL, out);
}

enum kp_err store_open_opts(const char *url, const struct store_opts *opts, struct store **out)
{
    struct store_opts defaults = {.pool_size = STORE_POOL_DEFAULT};
    const char *colon = NULL;
    char *shown = NULL;
    size_t scheme_len;
    enum kp_err rc = KP_ERR_CONFIG;

    if (url == NULL) {
        log_error("store: no database URL");
        return KP_ERR_CONFIG;
    }
    if (opts != NULL)
        defaults = *opts;
    if (defaults.pool_size <= 0)
        defaults.pool_size = STORE_POOL_DEFAULT;
    shown = store_url_shown(url);
    colon = strchr(url, ':');
    if (colon == NULL) {
        log_error("store: database URL \"%s\" has no scheme (expected sqlite:PATH)", shown);
        goto out;
    }
    scheme_len = (size_t)(colon - url);
    for (size_t i = 0; i < sizeof(store_backends) / sizeof(store_backends[0]); i++) {
        const struct store_ops *ops = store_backends[i];
        if (strlen(ops->scheme) == scheme_len && strncmp(ops->scheme, url, scheme_len) == 0) {
            rc = ops->open(colon + 1, &defaults, out);
            goto out;
        }
    }
    log_error("store: unsupported database scheme \"%.*s\" in \"%s\"", (int)scheme_len, url, shown);
out:
    free(shown);
    return rc;
}

/* "scheme://user:password@host/db?k=v" -> "scheme://user:***@host/db". */
char *store_url_shown(const char *url)
{
    char *s = xstrdup(url);
    char *authority = strstr(s, "://");
    char *end = NULL, *at = NULL, *colon = NULL, *out = NULL;

    s[strcspn(s, "?")] = '\0';
    if (authority == NULL || authority >= s + strlen(s))
        return s;
    authority += 3;
    end = authority + strcspn(authority, "/");
    for (char *q = authority; q < end; q++)
        if (*q == '@')
            at = q;
    if (at != NULL)
        colon = memchr(authority, ':', (size_t)(at - authority));
    if (colon == NULL)
        return s;
    out = xasprintf("%.*s***%s", (int)(colon + 1 - s), s, at);
    free(s);
    return out;
}

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    s->ops->close(s);
}

enum kp_err store_issue(struct store *s, const struct store_cert *c, int64_t otp_id,
                        const struct store_audit *ev)
{
    return s->ops->issue(s, c, otp_id, ev);
}

enum kp_err store_cert_get(struct store *s, const char *serial, struct store_cert **out)
{
    return s->ops->cert_get(s, serial, out);
}

enum kp_err store_cert_list(struct store *s, const char *label, store_cert_cb cb, void *arg)
{
    return s->ops->cert_list(s, label, cb, arg);
}

enum kp_err store_cert_query(struct store *s, const struct store_cert_query *q, store_cert_cb cb,
                             void *arg, int64_t *total)
{
    return s->ops->cert_query(s, q, cb, arg, total);
}

enum kp_err store_cert_revoke(struct store *s, const char *serial, const char *reason, int64_t at,
                              const struct store_audit *ev)
{
    return s->ops->cert_revoke(s, serial, reason, at, ev);
}

enum kp_err store_revoked_list(struct store *s, const char *const *labels, size_t n,
                               store_revoked_cb cb, void *arg)
{
    return s->ops->revoked_list(s, labels, n, cb, arg);
}

enum kp_err store_cert_count(struct store *s, int64_t *out)
{
    return s->ops->cert_count(s, out);
}

void store_cert_free(struct store_cert *c)
{
    if (c == NULL)
        return;
    free(c->serial);
    free(c->label);
    free(c->subject);
    free(c->sans);
    free(c->requester);
    free(c->auth_method);
    free(c->status);
    free(c->der);
    free(c);
}

enum kp_err store_otp_insert(struct store *s, const unsigned char hash[STORE_OTP_HASH_LEN],
                             const struct store_otp *o, int64_t *id_out)
{
    return s->ops->otp_insert(s, hash, o, id_out);
}

enum kp_err store_otp_find(struct store *s, const unsigned char hash[STORE_OTP_HASH_LEN],
                           struct store_otp **out)
{
    return s->ops->otp_find(s, hash, out);
}

enum kp_err store_otp_list(struct store *s, store_otp_cb cb, void *arg)
{
    return s->ops->otp_list(s, cb, arg);
}

enum kp_err store_otp_revoke(struct store *s, int64_t id, const struct store_audit *ev)
{
    return s->ops->otp_revoke(s, id, ev);
}

void store_otp_free(struct store_otp *o)
{
    if (o == NULL)
        return;
    free(o->entity_id);
    free(o->label);
    free(o->subject);
    free(o->sans);
    free(o);
}

enum kp_err store_audit_add(struct store *s, const struct store_audit *ev)
{
    return s->ops->audit_add(s, ev);
}

enum kp_err store_audit_list(struct store *s, int64_t since, store_audit_cb cb, void *arg)
{
    return s->ops->audit_list(s, since, cb, arg);
}

enum kp_err store_pending_put(struct store *s, const struct store_pending *p,
                              const struct store_audit *ev, int64_t *id_out)
{
    return s->ops->pending_put(s, p, ev, id_out);
}

enum kp_err store_pending_find(struct store *s, const char *label, const char *operation,
                               const char *requester, const char *fingerprint,
                               const char *csr_sha256, int64_t now, struct store_pending **out)
{
    return s->ops->pending_find(s, label, operation, requester, fingerprint, csr_sha256, now, out);
}

enum kp_err store_pending_get(struct store *s, int64_t id, struct store_pending **out)
{
    return s->ops->pending_get(s, id, out);
}

enum kp_err store_pending_list(struct store *s, const char *status, int64_t now,
                               store_pending_cb cb, void *arg)
{
    return s->ops->pending_list(s, status, now, cb, arg);
}

enum kp_err store_pending_decide(struct store *s, int64_t id, const char *status,
                                 const char *decided_by, int64_t now, const struct store_audit *ev)
{
    return s->ops->pending_decide(s, id, status, decided_by, now, ev);
}

enum kp_err store_pending_issue(struct store *s, int64_t id, const struct store_cert *c,
                                const struct store_audit *ev)
{
    return s->ops->pending_issue(s, id, c, ev);
}

void store_pending_free(struct store_pending *p)
{
    if (p == NULL)
        return;
    free(p->label);
    free(p->operation);
    free(p->requester);
    free(p->auth_method);
    free(p->csr_sha256);
    free(p->fingerprint);
    free(p->subject);
    free(p->sans);
    free(p->key_type);
    free(p->ekus);
    free(p->csr);
    free(p->status);
    free(p->decided_by);
    free(p->serial);
    free(p);
}

enum kp_err store_key_archive_get(struct store *s, const char *serial, unsigned char **der,
                                  size_t *len)
{
    return s->ops->key_archive_get(s, serial, der, len);
}

void store_library_versions(char *buf, size_t len)
{
    int pq = PQlibVersion(); /* major * 10000 + minor since PostgreSQL 10 */

    snprintf(buf, len, "SQLite %s, libpq %d.%d", sqlite3_libversion(), pq / 10000, pq % 10000);
}
