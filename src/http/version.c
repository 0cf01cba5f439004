#include "http/server.h"

#include <event2/event.h>

const char *http_library_version(void)
{
    return event_get_version();
}
