#include <sys/stat.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
    /* The database holds OTP hashes and the audit trail: nothing kipuka
     * creates is for other users. Key files are 0600 regardless. */
    umask(027);
    return cli_main(argc, argv);
}
