#include "core/err.h"

struct err_row {
    const char *code;
    int http;
    int coap;
    const char *msg;
};

static const struct err_row err_table[KP_ERR__MAX] = {
#define KP_ERR_ROW(name, code, http, coap, msg) [name] = {code, http, coap, msg},
    KP_ERRORS(KP_ERR_ROW)
#undef KP_ERR_ROW
};

static const struct err_row *err_row_get(enum kp_err e)
{
    if ((unsigned)e >= KP_ERR__MAX)
        e = KP_ERR_INTERNAL;
    return &err_table[e];
}

const char *kp_err_code(enum kp_err e)
{
    return err_row_get(e)->code;
}

int kp_err_http_status(enum kp_err e)
{
    return err_row_get(e)->http;
}

int kp_err_coap_code(enum kp_err e)
{
    return err_row_get(e)->coap;
}

const char *kp_err_message(enum kp_err e)
{
    return err_row_get(e)->msg;
}

int kp_err_is_server(enum kp_err e)
{
    return kp_err_http_status(e) >= 500;
}
