/* The HTTPS transport of EST (RFC 7030 3.2): N threads, each with its own
 * event loop and SO_REUSEPORT listener, turning requests into est_handle calls.
 * Only src/http/ includes libevent; this header does not. */
#ifndef KP_HTTP_SERVER_H
#define KP_HTTP_SERVER_H

#include "core/config.h"
#include "core/err.h"
#include "runtime/transport.h"

struct http_server;
struct runtime;

/* Bind listen:port of rt's current config, start its runtime_threads workers
 * and print "kipuka: listening on https://HOST:PORT/BASE/" to stdout once all
 * listen. Requests run on rt's generations (one reference each) and its pool;
 * each generation gets this transport's TLS context, base path and limits,
 * rebuilt by runtime_reload (a TLS failure fails the reload). listen, port
 * and threads change only on restart (a reload warns). rt must outlive the
 * server. Ignores SIGPIPE; workers block all signals. On failure *errmsg
 * (caller frees) says why. */
enum kp_err http_server_start(struct runtime *rt, struct http_server **out, char **errmsg);

/* The port actually bound (useful when cfg->port is 0). */
int http_server_port(const struct http_server *hs);

/* Stop accepting, close idle keep-alive connections, let in-flight requests
 * finish for at most grace_seconds, then stop the threads. Idempotent. */
void http_server_stop(struct http_server *hs, int grace_seconds);

/* Stop (without grace) if still running and free; later reloads build no
 * part for it. Accepts NULL. */
void http_server_free(struct http_server *hs);

/* For `kipuka serve`. */
extern const struct transport_ops http_transport;

/* "libevent 2.1.12-stable": for `kipuka version`. */
const char *http_library_version(void);

#endif
