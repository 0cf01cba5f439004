/* The one table of EST operations: RFC 7030 3.2.2 path segments and RFC 9148
 * short names and resource types. Every transport routes from it and says
 * which methods an operation takes from it. */
#include <string.h>

#include "est/est.h"

static const struct est_op_info ops[EST_OP__MAX] = {
    [EST_OP_CACERTS] = {EST_OP_CACERTS, "cacerts", "crts", "ace.est.crts", false, false},
    [EST_OP_SIMPLEENROLL] = {EST_OP_SIMPLEENROLL, "simpleenroll", "sen", "ace.est.sen", true, true},
    [EST_OP_SIMPLEREENROLL] = {EST_OP_SIMPLEREENROLL, "simplereenroll", "sren", "ace.est.sren",
                               true, true},
    [EST_OP_CSRATTRS] = {EST_OP_CSRATTRS, "csrattrs", "att", "ace.est.att", false, false},
    [EST_OP_SERVERKEYGEN] = {EST_OP_SERVERKEYGEN, "serverkeygen", "skg", "ace.est.skg", true, true},
    /* RFC 9148 has no full CMC resource; never offered, so it never issues */
    [EST_OP_FULLCMC] = {EST_OP_FULLCMC, "fullcmc", NULL, NULL, true, false},
};

const struct est_op_info *est_op_info(enum est_op op)
{
    return (unsigned)op < EST_OP__MAX ? &ops[op] : NULL;
}

static bool ops_name_is(const char *want, const char *name, size_t len)
{
    return want != NULL && strlen(want) == len && memcmp(want, name, len) == 0;
}

const struct est_op_info *est_op_by_name(const char *name, size_t len)
{
    for (int i = 0; i < EST_OP__MAX; i++)
        if (ops_name_is(ops[i].name, name, len))
            return &ops[i];
    return NULL;
}

const struct est_op_info *est_op_by_coap_name(const char *name, size_t len)
{
    for (int i = 0; i < EST_OP__MAX; i++)
        if (ops_name_is(ops[i].coap_name, name, len))
            return &ops[i];
    return NULL;
}

const char *est_op_name(enum est_op op)
{
    return (unsigned)op < EST_OP__MAX ? ops[op].name : "unknown";
}

bool est_label_valid(const char *s, size_t len)
{
    if (len == 0 || len > EST_LABEL_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}
