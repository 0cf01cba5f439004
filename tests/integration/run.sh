#!/bin/bash
# Run one integration test file (tests/integration/NAME.sh) with the helpers
# of lib.sh; prints TAP. Usage: run.sh NAME
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/$1.sh"
finish
