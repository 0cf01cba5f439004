/* The HTTPS transport of EST (RFC 7030 3.2): N threads, each with its own
 * event loop and SO_REUSEPORT listener, turning requests into est_handle calls.
 * Only src/http/ includes libevent; this header does not. */
#ifndef KP_HTTP_SERVER_H
#define KP_HTTP_SERVER_H

#include "core/config.h"
#include "core/err.h"

struct est_server;
struct http_server;

/* Bind cfg->listen:cfg->port and start cfg->threads worker threads (0: one per
 * online CPU); returns once every socket listens, after printing the readiness
 * line "kipuka: listening on https://HOST:PORT/BASE/" to stdout. cfg is only read
 * during the call. Ignores SIGPIPE process-wide; workers block all signals, so
 * handlers run in the caller's threads. On success the server owns est (freed by
 * http_server_free or a later reload); on failure the caller keeps it and
 * *errmsg (caller frees) says why. */
enum kp_err http_server_start(const struct kp_config *cfg, struct est_server *est,
                              struct http_server **out, char **errmsg);

/* The port actually bound (useful when cfg->port is 0). */
int http_server_port(const struct http_server *hs);

/* SIGHUP: swap in a TLS context built from cfg and the EST core est without
 * dropping connections. New connections use the new context (and new limits);
 * requests already running finish with the old est_server, which is freed
 * (est_server_free, from whichever thread releases it last) once no request holds
 * it. Takes ownership of est, also on failure (then est is freed and the old
 * generation stays). listen, port and threads need a restart (logged at warn). */
enum kp_err http_server_reload(struct http_server *hs, const struct kp_config *cfg,
                               struct est_server *est, char **errmsg);

/* Stop accepting, close idle keep-alive connections, let in-flight requests
 * finish for at most grace_seconds, then stop the threads. Idempotent. */
void http_server_stop(struct http_server *hs, int grace_seconds);

/* Stop (without grace) if still running, free everything including the current
 * est_server. Accepts NULL. */
void http_server_free(struct http_server *hs);

#endif
