#!/bin/sh
# run.sh SCRIPT VERB: run an rc.d script against the stub rc.subr, with a
# stub opentracker binary that prints its command line on stderr (and
# fails --check-config when RC_STUB_BAD_CONFIG is set).
# SCRIPT must have %%PREFIX%% replaced by "$RC_STUB_DIR/prefix".
set -eu
script=$1
verb=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "${RC_STUB_DIR}/prefix/bin"
# shellcheck disable=SC2016 # expanded by the stub, not here
printf '#!/bin/sh\necho "$0 $*" >&2\n[ -z "${RC_STUB_BAD_CONFIG:-}" ] || [ "$1" != --check-config ]\n' \
	>"${RC_STUB_DIR}/prefix/bin/opentracker"
chmod +x "${RC_STUB_DIR}/prefix/bin/opentracker"
# The script sources /etc/rc.subr; point it at the stub.
sed "s|^\. /etc/rc.subr\$|. ${here}/rc.subr|" "$script" >"${RC_STUB_DIR}/script"
sh "${RC_STUB_DIR}/script" "$verb" 2>&1 | sed "s|${RC_STUB_DIR}/prefix|/usr/local|g"
