/* The EST state that outlives a config generation (est_services). */
#include <stdlib.h>

#include "core/xalloc.h"
#include "est/est.h"
#include "est/ratelimit.h"
#include "est/refusals.h"

struct est_services *est_services_new(struct store *store, long window)
{
    struct est_services *svc = xcalloc(1, sizeof(*svc));

    svc->store = store;
    svc->auth_failures = ratelimit_new(window);
    svc->refusals = refusals_new(store, window);
    return svc;
}

void est_services_free(struct est_services *svc)
{
    if (svc == NULL)
        return;
    refusals_free(svc->refusals); /* writes the counts still open */
    ratelimit_free(svc->auth_failures);
    free(svc);
}
