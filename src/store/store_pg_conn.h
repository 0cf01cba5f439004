/* PostgreSQL connections for store_pg.c: a bounded pool of libpq connections
 * per handle, parameterised statements and the mapping of PostgreSQL errors
 * to kp_err. Private to src/store/. */
#ifndef KP_STORE_PG_CONN_H
#define KP_STORE_PG_CONN_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/err.h"

#define PG_MAX_PARAMS 16
/* Room for every constant statement of store_pg.c (about 25). */
#define PG_PREPARED_MAX 48

/* A statement prepared on one connection, named pg_prepared_name(index). */
struct pg_prepared {
    const char *sql; /* borrowed: a string literal of store_pg.c */
};

/* One pooled connection, checked out by one thread at a time. */
struct pg_conn {
    PGconn *conn; /* NULL until first needed */
    bool busy;
    struct pg_pool *pool; /* borrowed */
    /* What this session has prepared; emptied when conn is replaced. */
    struct pg_prepared prepared[PG_PREPARED_MAX];
    size_t n_prepared;
};

struct pg_pool {
    char *url;   /* libpq connection URI (may hold a password: never log it) */
    char *shown; /* the URI without password or query, for logs */
    pthread_mutex_t lock;
    pthread_cond_t freed;
    struct pg_conn *conns;
    size_t size;
    bool down;                /* last connection attempt failed: log the outage once */
    struct timespec retry_at; /* CLOCK_MONOTONIC: no new connection attempt before */
};

/* Parameters of one statement: text, or binary for bytea. */
struct pg_params {
    bool unprepared; /* run once (migrations): not kept prepared on the connection */
    int n;
    const char *values[PG_MAX_PARAMS];
    int lengths[PG_MAX_PARAMS];
    int formats[PG_MAX_PARAMS];
    char ints[PG_MAX_PARAMS][24]; /* decimal text of integer parameters */
};

/* A pool of up to size connections to url; none is opened yet. */
struct pg_pool *pg_pool_new(const char *url, size_t size);
void pg_pool_free(struct pg_pool *p);

/* Take a connected connection, waiting while all are busy; KP_ERR_UNAVAILABLE
 * when PostgreSQL cannot be reached (a broken connection is re-established
 * here) or the pool stays busy too long. */
enum kp_err pg_conn_get(struct pg_pool *p, struct pg_conn **out);
/* Give it back; an open transaction is rolled back first. */
void pg_conn_put(struct pg_conn *c);

void pg_params_text(struct pg_params *pp, const char *v); /* NULL: SQL NULL */
void pg_params_int(struct pg_params *pp, int64_t v);
void pg_params_bytes(struct pg_params *pp, const void *v, size_t len);

/* Run one statement (pp may be NULL). On success *out (when out is not NULL)
 * is the result, cleared by the caller. A unique violation is KP_ERR_CONFLICT,
 * a lost or refused connection KP_ERR_UNAVAILABLE, anything else
 * KP_ERR_STORE. first: nothing ran yet on this checkout, so a connection
 * found dead is re-established and the statement sent again once. With
 * parameters, sql must be constant (a string literal): it is prepared once
 * per connection and executed by name after, unless pp->unprepared. */
enum kp_err pg_run(struct pg_conn *c, const char *what, const char *sql, const struct pg_params *pp,
                   bool first, PGresult **out);

/* Run a query and call row(res, 0, arg) for each row as it arrives (libpq
 * single-row mode), so long lists are not held in memory. Always first.
 * sql is prepared once per connection as in pg_run. */
typedef void (*pg_row_cb)(const PGresult *res, void *arg);
enum kp_err pg_each(struct pg_conn *c, const char *what, const char *sql,
                    const struct pg_params *pp, pg_row_cb row, void *arg);

/* BEGIN (as a first statement), COMMIT. */
enum kp_err pg_begin(struct pg_conn *c);
enum kp_err pg_commit(struct pg_conn *c);

/* Column helpers on a text-format row. */
char *pg_value_strdup(const PGresult *res, int row, int col); /* NULL for SQL NULL */
int64_t pg_value_int64(const PGresult *res, int row, int col);
/* A bytea column into a new buffer (xmalloc), *len set. */
unsigned char *pg_value_bytes(const PGresult *res, int row, int col, size_t *len);

#endif
