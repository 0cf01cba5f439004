/* libcoap 3 for src/coap/ files: its coap_debug.h defines syslog's LOG_*
 * numbers as macros, which would shadow core/log.h's levels (LOG_INFO,
 * LOG_DEBUG). Include this instead of <coap3/coap.h>, before core/log.h. */
#ifndef KP_COAP_LIBCOAP_H
#define KP_COAP_LIBCOAP_H

#include <coap3/coap.h>

/* syslog numbers libcoap takes (coap_set_log_level) */
#define KP_COAP_LOG_ERR 3
#define KP_COAP_LOG_WARNING 4
#define KP_COAP_LOG_DEBUG 7

#undef LOG_EMERG
#undef LOG_ALERT
#undef LOG_CRIT
#undef LOG_ERR
#undef LOG_WARNING
#undef LOG_NOTICE
#undef LOG_INFO
#undef LOG_DEBUG

#endif
