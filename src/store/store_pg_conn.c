/* PostgreSQL connections for the store: a bounded pool per handle.
 *
 * A thread checks a connection out for a whole operation (one transaction),
 * so callers never share one. Connections open lazily; one found broken at
 * checkout or by the first statement of an operation is re-established, so
 * after a PostgreSQL restart the nodes recover without being restarted.
 * While PostgreSQL is unreachable every operation fails with
 * KP_ERR_UNAVAILABLE (503 + Retry-After for EST clients). */
#include "store/store_pg_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/xalloc.h"
#include "store/store.h"

/* How long a thread waits for a free connection before answering 503. */
#define PG_POOL_WAIT_S 10
/* After a failed connection attempt, requests answer 503 at once for this
 * long instead of each waiting on a connect to a server that is down. */
#define PG_RECONNECT_PAUSE_MS 250

struct pg_pool *pg_pool_new(const char *url, size_t size)
{
    struct pg_pool *p = xcalloc(1, sizeof(*p));

    p->url = xstrdup(url);
    p->shown = store_url_shown(url);
    p->size = size;
    p->conns = xcalloc(size, sizeof(*p->conns));
    for (size_t i = 0; i < size; i++)
        p->conns[i].pool = p;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    return p;
}

void pg_pool_free(struct pg_pool *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->size; i++)
        PQfinish(p->conns[i].conn); /* NULL is fine */
    free(p->conns);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p->url);
    free(p->shown);
    free(p);
}

/* libpq messages end with a newline and may span lines: one log line each. */
static void pg_message(const char *msg, char *buf, size_t len)
{
    snprintf(buf, len, "%s", msg != NULL ? msg : "");
    for (char *q = buf; *q != '\0'; q++)
        if (*q == '\n')
            *q = ' ';
    for (size_t n = strlen(buf); n > 0 && buf[n - 1] == ' '; n--)
        buf[n - 1] = '\0';
}

/* Record whether PostgreSQL answered; an outage and its end are logged once,
 * not once per request. */
static void pg_pool_mark(struct pg_pool *p, bool up, const char *why)
{
    bool was_down;

    pthread_mutex_lock(&p->lock);
    was_down = p->down;
    p->down = !up;
    pthread_mutex_unlock(&p->lock);
    if (!up && !was_down)
        log_error("store: PostgreSQL at %s is unreachable: %s", p->shown, why);
    else if (up && was_down)
        log_info("store: PostgreSQL at %s is reachable again", p->shown);
}

/* PostgreSQL's notices ("already exists, skipping") are not the operator's
 * business: libpq would print them on stderr. */
static void pg_notice(void *arg, const char *message)
{
    char msg[512];

    (void)arg;
    pg_message(message, msg, sizeof(msg));
    log_debug("store: %s", msg);
}

static bool pg_pool_paused(struct pg_pool *p)
{
    struct timespec now;
    bool paused;

    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&p->lock);
    paused = now.tv_sec < p->retry_at.tv_sec ||
             (now.tv_sec == p->retry_at.tv_sec && now.tv_nsec < p->retry_at.tv_nsec);
    pthread_mutex_unlock(&p->lock);
    return paused;
}

static void pg_pool_pause(struct pg_pool *p)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_nsec += PG_RECONNECT_PAUSE_MS * 1000000L;
    t.tv_sec += t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&p->lock);
    p->retry_at = t;
    pthread_mutex_unlock(&p->lock);
}

/* Open c's connection. Defaults first, the URL last: what the URL says wins
 * (libpq processes keywords in order). Keepalives notice a silent peer. */
static enum kp_err pg_connect(struct pg_conn *c)
{
    static const char *const keys[] = {"connect_timeout",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "fallback_application_name",
                                       "dbname",
                                       NULL};
    const char *vals[] = {"5", "30", "10", "3", "kipuka", c->pool->url, NULL};
    char msg[512];

    PQfinish(c->conn);
    c->conn = NULL;
    c->n_prepared = 0; /* a new session has none */
    if (pg_pool_paused(c->pool))
        return KP_ERR_UNAVAILABLE; /* the failure that paused us was logged */
    c->conn = PQconnectdbParams(keys, vals, 1);
    if (c->conn != NULL && PQstatus(c->conn) == CONNECTION_OK) {
        PQsetNoticeProcessor(c->conn, pg_notice, NULL);
        pg_pool_mark(c->pool, true, NULL);
        return KP_OK;
    }
    pg_message(c->conn != NULL ? PQerrorMessage(c->conn) : "out of memory", msg, sizeof(msg));
    pg_pool_mark(c->pool, false, msg);
    pg_pool_pause(c->pool);
    PQfinish(c->conn);
    c->conn = NULL;
    return KP_ERR_UNAVAILABLE;
}

/* A free slot, preferring one already connected; NULL when all are busy. */
static struct pg_conn *pg_pool_pick(struct pg_pool *p)
{
    struct pg_conn *spare = NULL;

    for (size_t i = 0; i < p->size; i++) {
        struct pg_conn *c = &p->conns[i];
        if (c->busy)
            continue;
        if (c->conn != NULL)
            return c;
        if (spare == NULL)
            spare = c;
    }
    return spare;
}

enum kp_err pg_conn_get(struct pg_pool *p, struct pg_conn **out)
{
    struct pg_conn *c = NULL;
    struct timespec deadline;
    enum kp_err rc;

    clock_gettime(CLOCK_REALTIME, &deadline); /* the clock pthread_cond_timedwait uses */
    deadline.tv_sec += PG_POOL_WAIT_S;
    pthread_mutex_lock(&p->lock);
    for (c = pg_pool_pick(p); c == NULL; c = pg_pool_pick(p)) {
        if (pthread_cond_timedwait(&p->freed, &p->lock, &deadline) == ETIMEDOUT) {
            c = pg_pool_pick(p);
            break;
        }
    }
    if (c != NULL)
        c->busy = true;
    pthread_mutex_unlock(&p->lock);
    if (c == NULL) {
        log_warn("store: all %zu PostgreSQL connections stayed busy for %d s (store.pool_size)",
                 p->size, PG_POOL_WAIT_S);
        return KP_ERR_UNAVAILABLE;
    }
    if (c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK) {
        rc = pg_connect(c);
        if (rc != KP_OK) {
            pg_conn_put(c);
            return rc;
        }
    }
    *out = c;
    return KP_OK;
}

void pg_conn_put(struct pg_conn *c)
{
    struct pg_pool *p = c->pool;

    if (c->conn != NULL) {
        switch (PQtransactionStatus(c->conn)) {
        case PQTRANS_IDLE:
            break;
        case PQTRANS_INTRANS:
        case PQTRANS_INERROR:
            PQclear(PQexec(c->conn, "ROLLBACK"));
            break;
        default: /* broken or mid-query: start afresh next time */
            PQfinish(c->conn);
            c->conn = NULL;
            break;
        }
    }
    pthread_mutex_lock(&p->lock);
    c->busy = false;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

void pg_params_text(struct pg_params *pp, const char *v)
{
    pp->values[pp->n] = v; /* borrowed */
    pp->lengths[pp->n] = 0;
    pp->formats[pp->n] = 0;
    pp->n++;
}

void pg_params_int(struct pg_params *pp, int64_t v)
{
    snprintf(pp->ints[pp->n], sizeof(pp->ints[0]), "%" PRId64, v);
    pg_params_text(pp, pp->ints[pp->n]);
}

void pg_params_bytes(struct pg_params *pp, const void *v, size_t len)
{
    pp->values[pp->n] = v; /* borrowed */
    pp->lengths[pp->n] = (int)len;
    pp->formats[pp->n] = 1; /* binary: bytea as is, no escaping */
    pp->n++;
}

/* SQLSTATEs that say "not now" rather than "never": connection failures
 * (class 08), shutdown and recovery (57P01-57P03), resources (class 53),
 * serialization or deadlock (40001, 40P01), a lock or statement timeout
 * (55P03, 57014) and a standby that cannot write (25006, after a failover). */
static bool pg_state_transient(const char *state)
{
    static const char *const transient[] = {"40001", "40P01", "55P03", "57014",
                                            "57P01", "57P02", "57P03", "25006"};

    if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0)
        return true;
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
        if (strcmp(state, transient[i]) == 0)
            return true;
    return false;
}

/* The one log line for a failed statement, and what it means for callers. */
static enum kp_err pg_result_err(struct pg_conn *c, const PGresult *res, const char *what)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    char msg[512];

    pg_message(res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(c->conn), msg, sizeof(msg));
    if (state != NULL && strcmp(state, "23505") == 0) {
        log_info("store: %s: %s", what, msg); /* callers may retry */
        return KP_ERR_CONFLICT;
    }
    log_error("store: %s failed on %s: %s (sqlstate %s)", what, c->pool->shown, msg,
              state != NULL ? state : "none");
    if (PQstatus(c->conn) != CONNECTION_OK) {
        pg_pool_mark(c->pool, false, msg);
        return KP_ERR_UNAVAILABLE;
    }
    return state != NULL && pg_state_transient(state) ? KP_ERR_UNAVAILABLE : KP_ERR_STORE;
}

/* A connection that died while idle in the pool shows only when used: when
 * nothing of the operation ran yet, a new one may take over. */
static bool pg_conn_lost(const struct pg_conn *c)
{
    return PQstatus(c->conn) != CONNECTION_OK;
}

static bool pg_revive(struct pg_conn *c)
{
    log_info("store: connection to %s lost, reconnecting", c->pool->shown);
    return pg_connect(c) == KP_OK;
}

/* The index of sql among c's prepared statements: the same literal first
 * (one call site passes one pointer), then the same text. -1 when absent. */
static int pg_prepared_find(const struct pg_conn *c, const char *sql)
{
    for (size_t i = 0; i < c->n_prepared; i++)
        if (c->prepared[i].sql == sql)
            return (int)i;
    for (size_t i = 0; i < c->n_prepared; i++)
        if (strcmp(c->prepared[i].sql, sql) == 0)
            return (int)i;
    return -1;
}

/* Prepare sql on c's session the first time it is run there, and put the
 * name to execute it by into name; name is empty when it runs unprepared
 * (pp->unprepared, or every slot taken). NULL on success, else the failed
 * PQprepare result for the caller's error path (a lost connection
 * included: a new session prepares again). */
static PGresult *pg_prepare_once(struct pg_conn *c, const char *sql, const struct pg_params *pp,
                                 char *name, size_t len)
{
    PGresult *res = NULL;
    int i;

    name[0] = '\0';
    if (pp->unprepared)
        return NULL;
    i = pg_prepared_find(c, sql);
    if (i < 0 && c->n_prepared == PG_PREPARED_MAX) {
        log_debug("store: every prepared statement slot is taken: running unprepared");
        return NULL;
    }
    snprintf(name, len, "kp_%d", i >= 0 ? i : (int)c->n_prepared);
    if (i < 0) {
        res = PQprepare(c->conn, name, sql, pp->n, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            name[0] = '\0';
            return res;
        }
        PQclear(res);
        c->prepared[c->n_prepared++].sql = sql;
    }
    return NULL;
}

/* Run sql once and wait for its result. Without parameters, the simple
 * protocol: a migration is several statements. */
static PGresult *pg_exec_params(struct pg_conn *c, const char *sql, const struct pg_params *pp)
{
    char name[24];
    PGresult *res = NULL;

    if (pp->n == 0)
        return PQexec(c->conn, sql);
    res = pg_prepare_once(c, sql, pp, name, sizeof(name));
    if (res != NULL)
        return res;
    if (name[0] == '\0')
        return PQexecParams(c->conn, sql, pp->n, NULL, pp->values, pp->lengths, pp->formats, 0);
    return PQexecPrepared(c->conn, name, pp->n, pp->values, pp->lengths, pp->formats, 0);
}

enum kp_err pg_run(struct pg_conn *c, const char *what, const char *sql, const struct pg_params *pp,
                   bool first, PGresult **out)
{
    static const struct pg_params none;
    PGresult *res = NULL;
    enum kp_err rc = KP_ERR_STORE;

    if (pp == NULL)
        pp = &none;
    for (int attempt = 0;; attempt++) {
        ExecStatusType st;

        res = pg_exec_params(c, sql, pp);
        st = PQresultStatus(res);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
            break;
        if (first && attempt == 0 && pg_conn_lost(c)) {
            PQclear(res);
            res = NULL;
            if (pg_revive(c))
                continue;
            return KP_ERR_UNAVAILABLE; /* pg_connect logged it */
        }
        rc = pg_result_err(c, res, what);
        goto out;
    }
    if (out != NULL) {
        *out = res;
        res = NULL; /* steal */
    }
    rc = KP_OK;
out:
    PQclear(res);
    return rc;
}

enum kp_err pg_each(struct pg_conn *c, const char *what, const char *sql,
                    const struct pg_params *pp, pg_row_cb row, void *arg)
{
    static const struct pg_params none;
    enum kp_err rc = KP_ERR_STORE;

    if (pp == NULL)
        pp = &none;
    for (int attempt = 0;; attempt++) {
        PGresult *res = NULL;
        size_t rows = 0;
        bool retry = false;
        char name[24];
        PGresult *failed = pg_prepare_once(c, sql, pp, name, sizeof(name));
        bool sent = false;

        rc = KP_OK;
        if (failed == NULL && name[0] != '\0')
            sent =
                PQsendQueryPrepared(c->conn, name, pp->n, pp->values, pp->lengths, pp->formats, 0);
        else if (failed == NULL)
            sent = PQsendQueryParams(c->conn, sql, pp->n, NULL, pp->values, pp->lengths,
                                     pp->formats, 0);
        if (!sent) {
            if (attempt > 0 || !pg_conn_lost(c)) {
                rc = pg_result_err(c, failed, what);
                PQclear(failed);
                return rc;
            }
            PQclear(failed);
            if (pg_revive(c))
                continue;
            return KP_ERR_UNAVAILABLE; /* pg_connect logged it */
        }
        PQsetSingleRowMode(c->conn);
        /* Read to the end even after a failure: the connection must be idle. */
        for (res = PQgetResult(c->conn); res != NULL; res = PQgetResult(c->conn)) {
            ExecStatusType st = PQresultStatus(res);
            if (st == PGRES_SINGLE_TUPLE && rc == KP_OK) {
                row(res, arg);
                rows++;
            } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && rc == KP_OK) {
                retry = attempt == 0 && rows == 0 && pg_conn_lost(c);
                rc = retry ? KP_ERR_UNAVAILABLE : pg_result_err(c, res, what);
            }
            PQclear(res);
        }
        if (retry && pg_revive(c))
            continue;
        return rc;
    }
}

enum kp_err pg_begin(struct pg_conn *c)
{
    return pg_run(c, "begin transaction", "BEGIN", NULL, true, NULL);
}

enum kp_err pg_commit(struct pg_conn *c)
{
    return pg_run(c, "commit", "COMMIT", NULL, false, NULL);
}

char *pg_value_strdup(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : xstrdup(PQgetvalue(res, row, col));
}

int64_t pg_value_int64(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

unsigned char *pg_value_bytes(const PGresult *res, int row, int col, size_t *len)
{
    unsigned char *raw = NULL;
    unsigned char *copy = NULL;
    size_t n = 0;

    if (!PQgetisnull(res, row, col))
        raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, col), &n);
    if (raw == NULL)
        n = 0;
    copy = xmalloc(n > 0 ? n : 1);
    if (n > 0)
        memcpy(copy, raw, n);
    PQfreemem(raw);
    *len = n;
    return copy;
}
