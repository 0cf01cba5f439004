/* PostgreSQL back end of the store ("postgresql://user@host:port/db").
 *
 * The same tables and migrations as store_sqlite.c, for several kipuka nodes
 * sharing one database: everything that must hold across nodes is enforced
 * by PostgreSQL (the serial primary key, the single UPDATE that takes an OTP
 * use, the audit identity column and clock). Each call checks a connection
 * out of the handle's pool (store_pg_conn.c) for its whole duration, and a
 * callback of a *_list function runs while it is checked out, so a callback
 * must not call back into the store. Every write is one transaction. */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/xalloc.h"
#include "store/store_backends.h"
#include "store/store_pg_conn.h"

/* pg_advisory_lock key held while migrating, so that of several nodes
 * starting together one migrates and the others wait ("kipuka" in ASCII). */
#define PG_MIGRATION_LOCK "117042026210720"

struct pg_store {
    struct store base; /* first: struct store * converts to this */
    struct pg_pool *pool;
};

/* Migration N is pg_migrations[N - 1]; append only, never edit a shipped one.
 * Each mirrors the SQLite migration of the same number. seq stands for
 * SQLite's rowid (insertion order among equal issued_at); audit.at comes from
 * the database's clock, the one clock all nodes share. */
static const char *const pg_migrations[] = {
    /* 1: initial schema */
    "CREATE TABLE certificates("
    " serial TEXT PRIMARY KEY,"
    " label TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " sans TEXT NOT NULL DEFAULT '',"
    " not_before BIGINT NOT NULL,"
    " not_after BIGINT NOT NULL,"
    " issued_at BIGINT NOT NULL,"
    " requester TEXT NOT NULL,"
    " auth_method TEXT NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'valid',"
    " revoked_at BIGINT NOT NULL DEFAULT 0,"
    " revocation_reason TEXT,"
    " der BYTEA NOT NULL,"
    " seq BIGINT GENERATED ALWAYS AS IDENTITY);"
    "CREATE INDEX certificates_label_issued ON certificates(label, issued_at);"
    "CREATE TABLE otps("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " hash BYTEA NOT NULL UNIQUE,"
    " entity_id TEXT NOT NULL,"
    " label TEXT,"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " uses_left BIGINT NOT NULL,"
    " uses_total BIGINT NOT NULL,"
    " revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE audit("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " at BIGINT NOT NULL,"
    " event TEXT NOT NULL,"
    " outcome TEXT NOT NULL,"
    " label TEXT,"
    " subject TEXT,"
    " peer TEXT,"
    " detail TEXT);"
    "CREATE INDEX audit_at ON audit(at);",
    /* 2: requests held for manual approval */
    "CREATE TABLE pending_requests("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " label TEXT NOT NULL,"
    " operation TEXT NOT NULL,"
    " requester TEXT NOT NULL,"
    " auth_method TEXT NOT NULL,"
    " otp_id BIGINT NOT NULL DEFAULT 0,"
    " csr_sha256 TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " csr BYTEA NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'pending',"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " decided_at BIGINT NOT NULL DEFAULT 0,"
    " decided_by TEXT,"
    " serial TEXT);"
    "CREATE INDEX pending_requests_match ON pending_requests(csr_sha256, requester);"
    "CREATE INDEX pending_requests_status ON pending_requests(status, created_at);",
    /* 3: serverkeygen keys kept encrypted under a label's archive key */
    "CREATE TABLE archived_keys("
    " serial TEXT PRIMARY KEY REFERENCES certificates(serial),"
    " cms BYTEA NOT NULL,"
    " created_at BIGINT NOT NULL);",
    /* 4: the subject and SANs an OTP may certify, bound at creation */
    "ALTER TABLE otps ADD COLUMN subject TEXT;"
    "ALTER TABLE otps ADD COLUMN sans TEXT;",
    /* 5: held requests matched by key, subject and SANs (a retry re-signs its
     * CSR), and what the operator is shown */
    "ALTER TABLE pending_requests ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE pending_requests ADD COLUMN sans TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE pending_requests ADD COLUMN key_type TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE pending_requests ADD COLUMN ekus TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX pending_requests_fingerprint ON pending_requests(fingerprint, requester);",
};

#define PG_MIGRATIONS_N (sizeof(pg_migrations) / sizeof(pg_migrations[0]))

#define PG_CERT_COLUMNS                                                                            \
    "serial, label, subject, sans, not_before, not_after, issued_at, requester, auth_method, "     \
    "status, revoked_at, der"

#define PG_OTP_COLUMNS                                                                             \
    "id, entity_id, label, created_at, expires_at, uses_left, uses_total, revoked, subject, sans"

/* Seconds since the epoch on the database server's clock. */
#define PG_NOW "floor(extract(epoch FROM clock_timestamp()))::bigint"

static struct pg_store *pg_store(struct store *s)
{
    return (struct pg_store *)s;
}

static int64_t pg_now(void)
{
    return (int64_t)time(NULL);
}

/* Run constant SQL with no parameters (never SQL built from input). */
static enum kp_err pg_exec(struct pg_conn *c, const char *sql, const char *what)
{
    return pg_run(c, what, sql, NULL, false, NULL);
}

/* One integer from a query's first row and column. */
static enum kp_err pg_query_int64(struct pg_conn *c, const char *sql, const struct pg_params *pp,
                                  bool first, int64_t *out, const char *what)
{
    PGresult *res = NULL;
    enum kp_err rc;

    rc = pg_run(c, what, sql, pp, first, &res);
    if (rc != KP_OK)
        goto out;
    if (PQntuples(res) != 1) {
        log_error("store: %s: no row", what);
        rc = KP_ERR_STORE;
        goto out;
    }
    *out = pg_value_int64(res, 0, 0);
out:
    PQclear(res);
    return rc;
}

/* Apply one migration in its own transaction, unless another node did. */
static enum kp_err pg_migration_apply(struct pg_conn *c, const char *shown, int64_t version,
                                      const char *sql)
{
    struct pg_params pp = {.unprepared = true}; /* runs once per database */
    int64_t done = 0;
    enum kp_err rc;

    /* Not pg_begin: a new connection would not hold the migration lock. */
    rc = pg_run(c, "begin transaction", "BEGIN", NULL, false, NULL);
    if (rc != KP_OK)
        goto out;
    pg_params_int(&pp, version);
    rc = pg_query_int64(c, "SELECT count(*) FROM schema_migrations WHERE version = $1", &pp, false,
                        &done, "read schema version");
    if (rc != KP_OK || done > 0)
        goto out; /* done: another node was first; put() rolls back */
    rc = pg_exec(c, sql, "schema migration");
    if (rc != KP_OK)
        goto out;
    pp = (struct pg_params){.unprepared = true};
    pg_params_int(&pp, version);
    pg_params_int(&pp, pg_now());
    rc = pg_run(c, "record schema migration",
                "INSERT INTO schema_migrations(version, applied_at) VALUES($1, $2)", &pp, false,
                NULL);
    if (rc != KP_OK)
        goto out;
    rc = pg_commit(c);
    if (rc != KP_OK)
        goto out;
    log_info("store: %s: applied schema migration %lld", shown, (long long)version);
out:
    return rc;
}

/* Bring the schema up to date under the advisory lock; a node that starts
 * while another migrates waits here, then finds nothing left to do. */
static enum kp_err pg_migrate(struct pg_conn *c, const char *shown)
{
    int64_t current = 0;
    enum kp_err rc;

    rc = pg_run(c, "take the migration lock", "SELECT pg_advisory_lock(" PG_MIGRATION_LOCK ")",
                NULL, true, NULL);
    if (rc != KP_OK)
        return rc;
    rc = pg_exec(c,
                 "CREATE TABLE IF NOT EXISTS schema_migrations("
                 "version BIGINT PRIMARY KEY, applied_at BIGINT)",
                 "create schema_migrations");
    if (rc != KP_OK)
        goto out;
    rc = pg_query_int64(c, "SELECT coalesce(max(version), 0) FROM schema_migrations", NULL, false,
                        &current, "read schema version");
    if (rc != KP_OK)
        goto out;
    if (current > (int64_t)PG_MIGRATIONS_N) {
        log_error("store: %s: schema version %lld is newer than this kipuka (%zu)", shown,
                  (long long)current, PG_MIGRATIONS_N);
        rc = KP_ERR_STORE;
        goto out;
    }
    for (size_t i = (size_t)current; i < PG_MIGRATIONS_N; i++) {
        rc = pg_migration_apply(c, shown, (int64_t)i + 1, pg_migrations[i]);
        if (rc != KP_OK)
            goto out;
    }
out:
    /* A session lock: it also goes when the connection does. */
    if (PQstatus(c->conn) == CONNECTION_OK) {
        if (PQtransactionStatus(c->conn) != PQTRANS_IDLE)
            pg_exec(c, "ROLLBACK", "rollback");
        pg_exec(c, "SELECT pg_advisory_unlock(" PG_MIGRATION_LOCK ")",
                "release the migration lock");
    }
    return rc;
}

static enum kp_err pg_open(const char *location, const struct store_opts *opts, struct store **out)
{
    struct pg_store *st = NULL;
    struct pg_conn *c = NULL;
    char *url = NULL;
    enum kp_err rc = KP_ERR_STORE;

    if (location == NULL || strncmp(location, "//", 2) != 0) {
        log_error("store: postgresql: expected postgresql://user@host:port/database");
        return KP_ERR_CONFIG;
    }
    url = xasprintf("postgresql:%s", location);
    st = xcalloc(1, sizeof(*st));
    st->base.ops = &store_pg_ops;
    st->pool = pg_pool_new(url, (size_t)opts->pool_size);
    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK) {
        log_error("store: cannot open database %s", st->pool->shown);
        goto out;
    }
    rc = pg_migrate(c, st->pool->shown);
    if (rc != KP_OK)
        goto out;
    *out = &st->base;
    st = NULL; /* steal */
out:
    if (c != NULL)
        pg_conn_put(c);
    if (st != NULL) {
        pg_pool_free(st->pool);
        free(st);
    }
    free(url);
    return rc;
}

static void pg_close(struct store *s)
{
    struct pg_store *st = pg_store(s);

    pg_pool_free(st->pool);
    free(st);
}

/* Insert one audit row at the database's time; nothing when ev is NULL. */
static enum kp_err pg_audit_insert(struct pg_conn *c, const struct store_audit *ev)
{
    struct pg_params pp = {0};

    if (ev == NULL)
        return KP_OK;
    pg_params_text(&pp, ev->event);
    pg_params_text(&pp, ev->outcome);
    pg_params_text(&pp, ev->label);
    pg_params_text(&pp, ev->subject);
    pg_params_text(&pp, ev->peer);
    pg_params_text(&pp, ev->detail);
    return pg_run(c, "insert audit event",
                  "INSERT INTO audit(at, event, outcome, label, subject, peer, detail)"
                  " VALUES(" PG_NOW ", $1, $2, $3, $4, $5, $6)",
                  &pp, false, NULL);
}

/* Take one use of an OTP that is still usable now, in one statement: of
 * nodes racing for the last use, PostgreSQL lets exactly one through.
 * KP_ERR_UNAUTHORIZED when it is used up, expired, revoked or gone. */
static enum kp_err pg_otp_consume(struct pg_conn *c, int64_t otp_id)
{
    struct pg_params pp = {0};
    PGresult *res = NULL;
    enum kp_err rc;

    pg_params_int(&pp, otp_id);
    pg_params_int(&pp, pg_now()); /* the clock the OTP's expiry was set by */
    rc = pg_run(c, "consume OTP",
                "UPDATE otps SET uses_left = uses_left - 1"
                " WHERE id = $1 AND uses_left > 0 AND revoked = 0 AND expires_at > $2"
                " RETURNING uses_left",
                &pp, false, &res);
    if (rc != KP_OK)
        goto out;
    if (PQntuples(res) == 0) {
        log_info("store: OTP %lld is used up, expired or revoked", (long long)otp_id);
        rc = KP_ERR_UNAUTHORIZED;
    }
out:
    PQclear(res);
    return rc;
}

static enum kp_err pg_cert_insert(struct pg_conn *c, const struct store_cert *cert)
{
    struct pg_params pp = {0}, ap = {0};
    enum kp_err rc;

    pg_params_text(&pp, cert->serial);
    pg_params_text(&pp, cert->label);
    pg_params_text(&pp, cert->subject);
    pg_params_text(&pp, cert->sans != NULL ? cert->sans : ""); /* column default */
    pg_params_int(&pp, cert->not_before);
    pg_params_int(&pp, cert->not_after);
    pg_params_int(&pp, cert->issued_at);
    pg_params_text(&pp, cert->requester);
    pg_params_text(&pp, cert->auth_method);
    pg_params_text(&pp, cert->status != NULL ? cert->status : "valid"); /* column default */
    pg_params_int(&pp, cert->revoked_at);
    pg_params_bytes(&pp, cert->der, cert->der_len);
    rc = pg_run(c, "insert certificate",
                "INSERT INTO certificates(" PG_CERT_COLUMNS ")"
                " VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                &pp, false, NULL);
    if (rc != KP_OK || cert->archived_key == NULL)
        return rc;
    pg_params_text(&ap, cert->serial);
    pg_params_bytes(&ap, cert->archived_key, cert->archived_key_len);
    pg_params_int(&ap, pg_now());
    return pg_run(c, "archive key",
                  "INSERT INTO archived_keys(serial, cms, created_at) VALUES($1, $2, $3)", &ap,
                  false, NULL);
}

static enum kp_err pg_issue(struct store *s, const struct store_cert *cert, int64_t otp_id,
                            const struct store_audit *ev)
{
    struct pg_store *st = pg_store(s);
    struct pg_conn *c = NULL;
    enum kp_err rc;

    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    rc = pg_begin(c);
    if (rc != KP_OK)
        goto out;
    if (otp_id > 0) {
        rc = pg_otp_consume(c, otp_id);
        if (rc != KP_OK)
            goto out;
    }
    rc = pg_cert_insert(c, cert);
    if (rc != KP_OK)
        goto out;
    rc = pg_audit_insert(c, ev);
    if (rc != KP_OK)
        goto out;
    rc = pg_commit(c);
out:
    pg_conn_put(c); /* rolls back an unfinished transaction */
    return rc;
}

/* A new store_cert from a row of PG_CERT_COLUMNS. */
static struct store_cert *pg_cert_from_row(const PGresult *res, int row)
{
    struct store_cert *cert = xcalloc(1, sizeof(*cert));

    cert->serial = pg_value_strdup(res, row, 0);
    cert->label = pg_value_strdup(res, row, 1);
    cert->subject = pg_value_strdup(res, row, 2);
    cert->sans = pg_value_strdup(res, row, 3);
    cert->not_before = pg_value_int64(res, row, 4);
    cert->not_after = pg_value_int64(res, row, 5);
    cert->issued_at = pg_value_int64(res, row, 6);
    cert->requester = pg_value_strdup(res, row, 7);
    cert->auth_method = pg_value_strdup(res, row, 8);
    cert->status = pg_value_strdup(res, row, 9);
    cert->revoked_at = pg_value_int64(res, row, 10);
    cert->der = pg_value_bytes(res, row, 11, &cert->der_len);
    return cert;
}

static enum kp_err pg_cert_get(struct store *s, const char *serial, struct store_cert **out)
{
    struct pg_store *st = pg_store(s);
    struct pg_conn *c = NULL;
    struct pg_params pp = {0};
    PGresult *res = NULL;
    enum kp_err rc;

    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    pg_params_text(&pp, serial);
    rc = pg_run(c, "read certificate",
                "SELECT " PG_CERT_COLUMNS " FROM certificates WHERE serial = $1", &pp, true, &res);
    if (rc != KP_OK)
        goto out;
    if (PQntuples(res) == 0) {
        rc = KP_ERR_NOT_FOUND;
        goto out;
    }
    *out = pg_cert_from_row(res, 0);
out:
    PQclear(res);
    pg_conn_put(c);
    return rc;
}

struct pg_cert_walk {
    store_cert_cb cb;
    void *arg;
};

static void pg_cert_row(const PGresult *res, void *arg)
{
    struct pg_cert_walk *w = arg;
    struct store_cert *cert = pg_cert_from_row(res, 0);

    w->cb(cert, w->arg);
    store_cert_free(cert);
}

static enum kp_err pg_cert_list(struct store *s, const char *label, store_cert_cb cb, void *arg)
{
    struct pg_store *st = pg_store(s);
    struct pg_cert_walk w = {.cb = cb, .arg = arg};
    struct pg_conn *c = NULL;
    struct pg_params pp = {0};
    enum kp_err rc;

    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    /* $1 IS NULL: one statement for "all labels" and "this label". */
    pg_params_text(&pp, label);
    rc = pg_each(c, "list certificates",
                 "SELECT " PG_CERT_COLUMNS " FROM certificates"
                 " WHERE $1::text IS NULL OR label = $1 ORDER BY issued_at DESC, seq DESC",
                 &pp, pg_cert_row, &w);
    pg_conn_put(c);
    return rc;
}

static enum kp_err pg_cert_count(struct store *s, int64_t *out)
{
    struct pg_store *st = pg_store(s);
    struct pg_conn *c = NULL;
    enum kp_err rc;

    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    rc = pg_query_int64(c, "SELECT count(*) FROM certificates", NULL, true, out,
                        "count certificates");
    pg_conn_put(c);
    return rc;
}

static enum kp_err pg_otp_insert(struct store *s, const unsigned char hash[STORE_OTP_HASH_LEN],
                                 const struct store_otp *o, int64_t *id_out)
{
    struct pg_store *st = pg_store(s);
    struct pg_conn *c = NULL;
    struct pg_params pp = {0};
    struct store_audit ev;
    char *detail = NULL;
    enum kp_err rc;
    int64_t id = 0;

    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    rc = pg_begin(c);
    if (rc != KP_OK)
        goto out;
    pg_params_bytes(&pp, hash, STORE_OTP_HASH_LEN);
    pg_params_text(&pp, o->entity_id);
    pg_params_text(&pp, o->label);
    pg_params_int(&pp, o->created_at);
    pg_params_int(&pp, o->expires_at);
    pg_params_int(&pp, o->uses_left);
    pg_params_int(&pp, o->uses_total);
    pg_params_int(&pp, o->revoked ? 1 : 0);
    pg_params_text(&pp, o->subject);
    pg_params_text(&pp, o->sans);
    rc = pg_query_int64(c,
                        "INSERT INTO otps(hash, entity_id, label, created_at, expires_at,"
                        " uses_left, uses_total, revoked, subject, sans)"
                        " VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                        &pp, false, &id, "insert OTP");
    if (rc != KP_OK)
        goto out;
    /* store.h passes no event here: the create event is built from the row. */
    detail = xasprintf("id=%lld", (long long)id);
    ev.event = "otp.create";
    ev.outcome = "ok";
    ev.label = o->label;       /* borrowed */
    ev.subject = o->entity_id; /* borrowed */
    ev.peer = NULL;
    ev.detail = detail;
    rc = pg_audit_insert(c, &ev);
    if (rc != KP_OK)
        goto out;
    rc = pg_commit(c);
    if (rc != KP_OK)
        goto out;
    *id_out = id;
out:
    pg_conn_put(c);
    free(detail);
    return rc;
}

/* A new store_otp from a row of PG_OTP_COLUMNS. */
static struct store_otp *pg_otp_from_row(const PGresult *res, int row)
{
    struct store_otp *o = xcalloc(1, sizeof(*o));

    o->id = pg_value_int64(res, row, 0);
    o->entity_id = pg_value_strdup(res, row, 1);
    o->label = pg_value_strdup(res, row, 2);
    o->created_at = pg_value_int64(res, row, 3);
    o->expires_at = pg_value_int64(res, row, 4);
    o->uses_left = pg_value_int64(res, row, 5);
    o->uses_total = pg_value_int64(res, row, 6);
    o->revoked = pg_value_int64(res, row, 7) != 0;
    o->subject = pg_value_strdup(res, row, 8);
    o->sans = pg_value_strdup(res, row, 9);
    return o;
}

static enum kp_err pg_otp_find(struct store *s, const unsigned char hash[STORE_OTP_HASH_LEN],
                               struct store_otp **out)
{
    struct pg_store *st = pg_store(s);
    struct pg_conn *c = NULL;
    struct pg_params pp = {0};
    PGresult *res = NULL;
    enum kp_err rc;

    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    pg_params_bytes(&pp, hash, STORE_OTP_HASH_LEN);
    rc = pg_run(c, "find OTP", "SELECT " PG_OTP_COLUMNS " FROM otps WHERE hash = $1", &pp, true,
                &res);
    if (rc != KP_OK)
        goto out;
    if (PQntuples(res) == 0) {
        rc = KP_ERR_NOT_FOUND;
        goto out;
    }
    *out = pg_otp_from_row(res, 0);
out:
    PQclear(res);
    pg_conn_put(c);
    return rc;
}

struct pg_otp_walk {
    store_otp_cb cb;
    void *arg;
};

static void pg_otp_row(const PGresult *res, void *arg)
{
    struct pg_otp_walk *w = arg;
    struct store_otp *o = pg_otp_from_row(res, 0);

    w->cb(o, w->arg);
    store_otp_free(o);
}

static enum kp_err pg_otp_list(struct store *s, store_otp_cb cb, void *arg)
{
    struct pg_store *st = pg_store(s);
    struct pg_otp_walk w = {.cb = cb, .arg = arg};
    struct pg_conn *c = NULL;
    enum kp_err rc;

    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    rc = pg_each(c, "list OTPs", "SELECT " PG_OTP_COLUMNS " FROM otps ORDER BY id", NULL,
                 pg_otp_row, &w);
    pg_conn_put(c);
    return rc;
}

static enum kp_err pg_otp_revoke(struct store *s, int64_t id, const struct store_audit *ev)
{
    struct pg_store *st = pg_store(s);
    struct pg_conn *c = NULL;
    struct pg_params pp = {0};
    PGresult *res = NULL;
    enum kp_err rc;

    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    rc = pg_begin(c);
    if (rc != KP_OK)
        goto out;
    pg_params_int(&pp, id);
    rc = pg_run(c, "revoke OTP", "UPDATE otps SET revoked = 1 WHERE id = $1", &pp, false, &res);
    if (rc != KP_OK)
        goto out;
    if (strcmp(PQcmdTuples(res), "0") == 0) {
        rc = KP_ERR_NOT_FOUND;
        goto out;
    }
    rc = pg_audit_insert(c, ev);
    if (rc != KP_OK)
        goto out;
    rc = pg_commit(c);
out:
    PQclear(res);
    pg_conn_put(c);
    return rc;
}

static enum kp_err pg_audit_add(struct store *s, const struct store_audit *ev)
{
    struct pg_store *st = pg_store(s);
    struct pg_conn *c = NULL;
    enum kp_err rc;

    if (ev == NULL)
        return KP_OK;
    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    /* In a transaction of its own so that a connection found dead at BEGIN
     * may be replaced without risking the row twice. */
    rc = pg_begin(c);
    if (rc == KP_OK)
        rc = pg_audit_insert(c, ev);
    if (rc == KP_OK)
        rc = pg_commit(c);
    pg_conn_put(c);
    return rc;
}

struct pg_audit_walk {
    store_audit_cb cb;
    void *arg;
};

static void pg_audit_row(const PGresult *res, void *arg)
{
    struct pg_audit_walk *w = arg;
    struct store_audit ev;

    /* borrowed: valid while res is */
    ev.event = PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1);
    ev.outcome = PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2);
    ev.label = PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3);
    ev.subject = PQgetisnull(res, 0, 4) ? NULL : PQgetvalue(res, 0, 4);
    ev.peer = PQgetisnull(res, 0, 5) ? NULL : PQgetvalue(res, 0, 5);
    ev.detail = PQgetisnull(res, 0, 6) ? NULL : PQgetvalue(res, 0, 6);
    w->cb(pg_value_int64(res, 0, 0), &ev, w->arg);
}

static enum kp_err pg_audit_list(struct store *s, int64_t since, store_audit_cb cb, void *arg)
{
    struct pg_store *st = pg_store(s);
    struct pg_audit_walk w = {.cb = cb, .arg = arg};
    struct pg_conn *c = NULL;
    struct pg_params pp = {0};
    enum kp_err rc;

    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    pg_params_int(&pp, since);
    rc = pg_each(c, "list audit events",
                 "SELECT at, event, outcome, label, subject, peer, detail FROM audit"
                 " WHERE at >= $1 ORDER BY at, id",
                 &pp, pg_audit_row, &w);
    pg_conn_put(c);
    return rc;
}

/* ---- what the admin API reads and changes ---- */

/* $n::text IS NULL: one statement whatever filters are set. */
#define PG_CERT_FILTER                                                                             \
    " WHERE ($1::text IS NULL OR label = $1) AND ($2::text IS NULL OR status = $2)"                \
    " AND ($3::text IS NULL OR strpos(subject, $3) > 0)"

static enum kp_err pg_cert_query(struct store *s, const struct store_cert_query *q,
                                 store_cert_cb cb, void *arg, int64_t *total)
{
    struct pg_store *st = pg_store(s);
    struct pg_cert_walk w = {.cb = cb, .arg = arg};
    struct pg_conn *c = NULL;
    struct pg_params pp = {0}, lp;
    enum kp_err rc;

    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    pg_params_text(&pp, q->label);
    pg_params_text(&pp, q->status);
    pg_params_text(&pp, q->subject);
    rc = pg_query_int64(c, "SELECT count(*) FROM certificates" PG_CERT_FILTER, &pp, true, total,
                        "count certificates");
    if (rc != KP_OK)
        goto out;
    lp = pp;
    pg_params_int(&lp, q->limit > 0 ? q->limit : INT64_MAX);
    pg_params_int(&lp, q->offset > 0 ? q->offset : 0);
    rc = pg_each(c, "query certificates",
                 "SELECT " PG_CERT_COLUMNS " FROM certificates" PG_CERT_FILTER
                 " ORDER BY issued_at DESC, seq DESC LIMIT $4 OFFSET $5",
                 &lp, pg_cert_row, &w);
out:
    pg_conn_put(c);
    return rc;
}

static enum kp_err pg_cert_revoke(struct store *s, const char *serial, const char *reason,
                                  int64_t at, const struct store_audit *ev)
{
    struct pg_store *st = pg_store(s);
    struct pg_conn *c = NULL;
    struct pg_params pp = {0}, fp = {0};
    PGresult *res = NULL;
    int64_t n = 0;
    enum kp_err rc;

    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    rc = pg_begin(c);
    if (rc != KP_OK)
        goto out;
    pg_params_text(&pp, serial);
    pg_params_int(&pp, at);
    pg_params_text(&pp, reason);
    rc = pg_run(c, "revoke certificate",
                "UPDATE certificates SET status = 'revoked', revoked_at = $2,"
                " revocation_reason = $3 WHERE serial = $1 AND status = 'valid'",
                &pp, false, &res);
    if (rc != KP_OK)
        goto out;
    if (strcmp(PQcmdTuples(res), "0") == 0) {
        pg_params_text(&fp, serial);
        rc = pg_query_int64(c, "SELECT count(*) FROM certificates WHERE serial = $1", &fp, false,
                            &n, "find certificate");
        if (rc == KP_OK)
            rc = n == 0 ? KP_ERR_NOT_FOUND : KP_ERR_CONFLICT;
        goto out;
    }
    rc = pg_audit_insert(c, ev);
    if (rc != KP_OK)
        goto out;
    rc = pg_commit(c);
out:
    PQclear(res);
    pg_conn_put(c);
    return rc;
}

struct pg_revoked_walk {
    store_revoked_cb cb;
    void *arg;
};

static void pg_revoked_row(const PGresult *res, void *arg)
{
    struct pg_revoked_walk *w = arg;
    struct store_revoked r = {
        .serial = PQgetvalue(res, 0, 0),
        .revoked_at = pg_value_int64(res, 0, 1),
        .reason = PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2),
    };

    w->cb(&r, w->arg);
}

/* A text[] literal for labels: {"a","b"}, each element quoted with " and \
 * escaped, so no label can change the array (caller frees). */
static char *pg_text_array(const char *const *v, size_t n)
{
    size_t cap = 3, off = 0;
    char *out;

    for (size_t i = 0; i < n; i++)
        cap += 2 * strlen(v[i]) + 3;
    out = xmalloc(cap);
    out[off++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            out[off++] = ',';
        out[off++] = '"';
        for (const char *p = v[i]; *p != '\0'; p++) {
            if (*p == '"' || *p == '\\')
                out[off++] = '\\';
            out[off++] = *p;
        }
        out[off++] = '"';
    }
    out[off++] = '}';
    out[off] = '\0';
    return out;
}

static enum kp_err pg_revoked_list(struct store *s, const char *const *labels, size_t n,
                                   store_revoked_cb cb, void *arg)
{
    struct pg_store *st = pg_store(s);
    struct pg_revoked_walk w = {.cb = cb, .arg = arg};
    struct pg_conn *c = NULL;
    struct pg_params pp = {0};
    char *array = NULL;
    enum kp_err rc;

    if (n == 0)
        return KP_OK;
    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    array = pg_text_array(labels, n);
    pg_params_text(&pp, array);
    rc = pg_each(c, "list revoked certificates",
                 "SELECT serial, revoked_at, revocation_reason FROM certificates"
                 " WHERE status = 'revoked' AND label = ANY($1::text[]) ORDER BY revoked_at, seq",
                 &pp, pg_revoked_row, &w);
    pg_conn_put(c);
    free(array);
    return rc;
}

/* ---- requests held for manual approval ---- */

#define PG_PENDING_COLUMNS                                                                         \
    "id, label, operation, requester, auth_method, otp_id, csr_sha256, subject, csr, status, "     \
    "created_at, expires_at, decided_at, decided_by, serial, fingerprint, sans, key_type, ekus"

static struct store_pending *pg_pending_from_row(const PGresult *res, int row)
{
    struct store_pending *p = xcalloc(1, sizeof(*p));

    p->id = pg_value_int64(res, row, 0);
    p->label = pg_value_strdup(res, row, 1);
    p->operation = pg_value_strdup(res, row, 2);
    p->requester = pg_value_strdup(res, row, 3);
    p->auth_method = pg_value_strdup(res, row, 4);
    p->otp_id = pg_value_int64(res, row, 5);
    p->csr_sha256 = pg_value_strdup(res, row, 6);
    p->subject = pg_value_strdup(res, row, 7);
    p->csr = pg_value_bytes(res, row, 8, &p->csr_len);
    p->status = pg_value_strdup(res, row, 9);
    p->created_at = pg_value_int64(res, row, 10);
    p->expires_at = pg_value_int64(res, row, 11);
    p->decided_at = pg_value_int64(res, row, 12);
    p->decided_by = pg_value_strdup(res, row, 13);
    p->serial = pg_value_strdup(res, row, 14);
    p->fingerprint = pg_value_strdup(res, row, 15);
    p->sans = pg_value_strdup(res, row, 16);
    p->key_type = pg_value_strdup(res, row, 17);
    p->ekus = pg_value_strdup(res, row, 18);
    return p;
}

static enum kp_err pg_pending_put(struct store *s, const struct store_pending *p,
                                  const struct store_audit *ev, int64_t *id_out)
{
    struct pg_store *st = pg_store(s);
    struct pg_conn *c = NULL;
    struct pg_params pp = {0};
    PGresult *res = NULL;
    int64_t id;
    enum kp_err rc;

    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    rc = pg_begin(c);
    if (rc != KP_OK)
        goto out;
    if (p->otp_id > 0) {
        rc = pg_otp_consume(c, p->otp_id);
        if (rc != KP_OK)
            goto out;
    }
    pg_params_text(&pp, p->label);
    pg_params_text(&pp, p->operation);
    pg_params_text(&pp, p->requester);
    pg_params_text(&pp, p->auth_method);
    pg_params_int(&pp, p->otp_id);
    pg_params_text(&pp, p->csr_sha256);
    pg_params_text(&pp, p->subject);
    pg_params_bytes(&pp, p->csr, p->csr_len);
    pg_params_int(&pp, p->created_at);
    pg_params_int(&pp, p->expires_at);
    pg_params_text(&pp, p->fingerprint);
    pg_params_text(&pp, p->sans);
    pg_params_text(&pp, p->key_type);
    pg_params_text(&pp, p->ekus);
    rc = pg_run(c, "insert pending request",
                "INSERT INTO pending_requests(label, operation, requester, auth_method, otp_id,"
                " csr_sha256, subject, csr, status, created_at, expires_at, fingerprint, sans,"
                " key_type, ekus) VALUES($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10,"
                " $11, $12, $13, $14) RETURNING id",
                &pp, false, &res);
    if (rc != KP_OK)
        goto out;
    id = pg_value_int64(res, 0, 0);
    rc = pg_audit_insert(c, ev);
    if (rc != KP_OK)
        goto out;
    rc = pg_commit(c);
    if (rc == KP_OK)
        *id_out = id;
out:
    PQclear(res);
    pg_conn_put(c);
    return rc;
}

/* One row of a pending_requests query, or KP_ERR_NOT_FOUND. */
static enum kp_err pg_pending_one(struct store *s, const char *what, const char *sql,
                                  const struct pg_params *pp, struct store_pending **out)
{
    struct pg_store *st = pg_store(s);
    struct pg_conn *c = NULL;
    PGresult *res = NULL;
    enum kp_err rc;

    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    rc = pg_run(c, what, sql, pp, true, &res);
    if (rc == KP_OK && PQntuples(res) == 0)
        rc = KP_ERR_NOT_FOUND;
    if (rc == KP_OK)
        *out = pg_pending_from_row(res, 0);
    PQclear(res);
    pg_conn_put(c);
    return rc;
}

static enum kp_err pg_pending_find(struct store *s, const char *label, const char *operation,
                                   const char *requester, const char *fingerprint,
                                   const char *csr_sha256, int64_t now, struct store_pending **out)
{
    struct pg_params pp = {0};

    pg_params_text(&pp, fingerprint);
    pg_params_text(&pp, requester);
    pg_params_text(&pp, label);
    pg_params_text(&pp, operation);
    pg_params_int(&pp, now);
    pg_params_text(&pp, csr_sha256);
    /* rows held before migration 4 have no fingerprint: their exact bytes */
    return pg_pending_one(s, "find pending request",
                          "SELECT " PG_PENDING_COLUMNS " FROM pending_requests"
                          " WHERE ((fingerprint = $1 AND fingerprint <> '')"
                          " OR (fingerprint = '' AND csr_sha256 = $6))"
                          " AND requester = $2 AND label = $3"
                          " AND operation = $4 AND status IN ('pending', 'approved', 'rejected')"
                          " AND expires_at > $5 ORDER BY id DESC LIMIT 1",
                          &pp, out);
}

static enum kp_err pg_pending_get(struct store *s, int64_t id, struct store_pending **out)
{
    struct pg_params pp = {0};

    pg_params_int(&pp, id);
    return pg_pending_one(s, "read pending request",
                          "SELECT " PG_PENDING_COLUMNS " FROM pending_requests WHERE id = $1", &pp,
                          out);
}

struct pg_pending_walk {
    store_pending_cb cb;
    void *arg;
};

static void pg_pending_row(const PGresult *res, void *arg)
{
    struct pg_pending_walk *w = arg;
    struct store_pending *p = pg_pending_from_row(res, 0);

    w->cb(p, w->arg);
    store_pending_free(p);
}

static enum kp_err pg_pending_list(struct store *s, const char *status, int64_t now,
                                   store_pending_cb cb, void *arg)
{
    struct pg_store *st = pg_store(s);
    struct pg_pending_walk w = {.cb = cb, .arg = arg};
    struct pg_conn *c = NULL;
    struct pg_params pp = {0};
    enum kp_err rc;

    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    pg_params_text(&pp, status);
    pg_params_int(&pp, now);
    /* "expired" is not stored: it is a live status whose time has passed. */
    rc = pg_each(c, "list pending requests",
                 "SELECT " PG_PENDING_COLUMNS " FROM pending_requests WHERE $1::text IS NULL"
                 " OR ($1 = 'expired' AND status IN ('pending', 'approved') AND expires_at <= $2)"
                 " OR ($1 IN ('pending', 'approved') AND status = $1 AND expires_at > $2)"
                 " OR ($1 NOT IN ('expired', 'pending', 'approved') AND status = $1)"
                 " ORDER BY id",
                 &pp, pg_pending_row, &w);
    pg_conn_put(c);
    return rc;
}

/* Run a one-row state change with its audit event; KP_ERR_NOT_FOUND when the
 * UPDATE matched nothing. A certificate, when given, is inserted with it. */
static enum kp_err pg_pending_change(struct store *s, const char *what, const char *sql,
                                     const struct pg_params *pp, const struct store_cert *cert,
                                     const struct store_audit *ev)
{
    struct pg_store *st = pg_store(s);
    struct pg_conn *c = NULL;
    PGresult *res = NULL;
    enum kp_err rc;

    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    rc = pg_begin(c);
    if (rc != KP_OK)
        goto out;
    rc = pg_run(c, what, sql, pp, false, &res);
    if (rc != KP_OK)
        goto out;
    if (strcmp(PQcmdTuples(res), "0") == 0) {
        rc = KP_ERR_NOT_FOUND;
        goto out;
    }
    if (cert != NULL) {
        rc = pg_cert_insert(c, cert);
        if (rc != KP_OK)
            goto out;
    }
    rc = pg_audit_insert(c, ev);
    if (rc != KP_OK)
        goto out;
    rc = pg_commit(c);
out:
    PQclear(res);
    pg_conn_put(c);
    return rc;
}

static enum kp_err pg_pending_decide(struct store *s, int64_t id, const char *status,
                                     const char *decided_by, int64_t now,
                                     const struct store_audit *ev)
{
    struct pg_params pp = {0};

    pg_params_int(&pp, id);
    pg_params_text(&pp, status);
    pg_params_int(&pp, now);
    pg_params_text(&pp, decided_by);
    return pg_pending_change(s, "decide pending request",
                             "UPDATE pending_requests SET status = $2, decided_at = $3,"
                             " decided_by = $4 WHERE id = $1 AND status = 'pending'"
                             " AND expires_at > $3",
                             &pp, NULL, ev);
}

static enum kp_err pg_pending_issue(struct store *s, int64_t id, const struct store_cert *cert,
                                    const struct store_audit *ev)
{
    struct pg_params pp = {0};

    pg_params_int(&pp, id);
    pg_params_text(&pp, cert->serial);
    return pg_pending_change(s, "mark pending request issued",
                             "UPDATE pending_requests SET status = 'issued', serial = $2"
                             " WHERE id = $1 AND status = 'approved'",
                             &pp, cert, ev);
}

static enum kp_err pg_key_archive_get(struct store *s, const char *serial, unsigned char **der,
                                      size_t *len)
{
    struct pg_store *st = pg_store(s);
    struct pg_conn *c = NULL;
    struct pg_params pp = {0};
    PGresult *res = NULL;
    enum kp_err rc;

    rc = pg_conn_get(st->pool, &c);
    if (rc != KP_OK)
        return rc;
    pg_params_text(&pp, serial);
    rc = pg_run(c, "read archived key", "SELECT cms FROM archived_keys WHERE serial = $1", &pp,
                true, &res);
    if (rc == KP_OK && PQntuples(res) == 0)
        rc = KP_ERR_NOT_FOUND;
    if (rc == KP_OK)
        *der = pg_value_bytes(res, 0, 0, len);
    PQclear(res);
    pg_conn_put(c);
    return rc;
}

const struct store_ops store_pg_ops = {
    .scheme = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .issue = pg_issue,
    .cert_get = pg_cert_get,
    .cert_list = pg_cert_list,
    .cert_count = pg_cert_count,
    .otp_insert = pg_otp_insert,
    .otp_find = pg_otp_find,
    .otp_list = pg_otp_list,
    .otp_revoke = pg_otp_revoke,
    .audit_add = pg_audit_add,
    .audit_list = pg_audit_list,
    .cert_query = pg_cert_query,
    .cert_revoke = pg_cert_revoke,
    .revoked_list = pg_revoked_list,
    .pending_put = pg_pending_put,
    .pending_find = pg_pending_find,
    .pending_get = pg_pending_get,
    .pending_list = pg_pending_list,
    .pending_decide = pg_pending_decide,
    .pending_issue = pg_pending_issue,
    .key_archive_get = pg_key_archive_get,
};
