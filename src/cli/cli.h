/* The `kipuka` command line: one file per subcommand. */
#ifndef KP_CLI_H
#define KP_CLI_H

#include "core/config.h"
#include "store/store.h"

#define CLI_DEFAULT_CONFIG "./var/kipuka.toml"

/* Entry point from main(); returns the process exit status. */
int cli_main(int argc, char **argv);

int cmd_init(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_otp(int argc, char **argv);
int cmd_cert(int argc, char **argv);
int cmd_admin(int argc, char **argv);
int cmd_request(int argc, char **argv);

/* Load the config or print why not; NULL on failure. */
struct kp_config *cli_config_load(const char *path);
/* Open the config's store or print why not; NULL on failure. */
struct store *cli_store_open(const struct kp_config *cfg);
/* "2026-11-23T10:00:00Z" into buf. */
const char *cli_time(int64_t t, char *buf, size_t len);

/* "cli:LOGIN" of the user running the command, for audit rows. */
const char *cli_operator(char *buf, size_t len);

#endif
