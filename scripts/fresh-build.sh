#!/bin/sh
# Proof that the README's first command needs nothing but what it installs.
# Builds kipuka as `make run` does (meson setup + ninja, default options) in
# a scratch directory, on a view of this machine that shows only the Debian
# packages `scripts/install-deps.sh build` installs, their dependencies and
# what every Debian system has (Essential or Priority: required):
#   - pkg-config sees only those packages' .pc files (PKG_CONFIG_LIBDIR);
#   - every other package's header under /usr/include is shadowed by one that
#     stops the compiler with #error (CPATH is searched before /usr/include);
#   - every other package's lib*.so and lib*.a is shadowed by a linker script
#     that cannot be satisfied (LIBRARY_PATH);
#   - every other package's program (clang, jq, psql...) is shadowed by one
#     that fails (PATH).
# Then `kipuka init`, `kipuka otp create` and `kipuka serve` on a free port
# (as scripts/run.sh does), and GET /cacerts with curl must answer 200 with a
# PKCS#7 that `openssl pkcs7` decodes. Exits 0 when all of it works.
#
# Usage: scripts/fresh-build.sh [SOURCE_DIR]   (default: this checkout)
# Environment: KP_KEEP=1 keeps the scratch directory; NINJA_JOBS=N for ninja -j.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/..}
src=$(cd "$src" && pwd) || exit 2
work=$(mktemp -d /tmp/kipuka-fresh.XXXXXX) || exit 2
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    if [ -n "${KP_KEEP:-}" ]; then echo "fresh build: scratch kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "fresh build: FAILED: $*" >&2
    exit 1
}

pkgs=$("$here/install-deps.sh" --list build) || fail "install-deps.sh --list build"

# The view: $work/view/{pc,include,lib,bin}, from dpkg's own records.
python3 - "$pkgs" "$work/view" <<'EOF' || fail "cannot build the package view"
import os, re, sys

wanted, out = sys.argv[1].split(), sys.argv[2]
pkgs, provides = {}, {}
with open("/var/lib/dpkg/status", encoding="utf-8", errors="replace") as f:
    stanzas = f.read().split("\n\n")
for st in stanzas:
    fields, key = {}, None
    for line in st.split("\n"):
        if line[:1] in (" ", "\t") and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, _, v = line.partition(":")
            fields[key] = v.strip()
    if "Package" not in fields or not fields.get("Status", "").endswith(" installed"):
        continue
    name = fields["Package"]
    pkgs.setdefault(name, []).append(fields)
    for p in fields.get("Provides", "").split(","):
        p = p.strip().split(" ")[0].split(":")[0]
        if p:
            provides.setdefault(p, []).append(name)

def resolve(alt):
    name = alt.strip().split(" ")[0].split("(")[0].split(":")[0]
    if name in pkgs:
        return name
    return provides.get(name, [None])[0]

missing = [p for p in wanted if p not in pkgs]
if missing:
    sys.exit("install-deps.sh build lists packages that are not installed: " + " ".join(missing))
seen = set()
todo = list(wanted) + [n for n, v in pkgs.items()
                       if any(x.get("Essential") == "yes" or x.get("Priority") == "required"
                              for x in v)]
while todo:
    n = todo.pop()
    if n in seen:
        continue
    seen.add(n)
    for x in pkgs[n]:
        deps = x.get("Depends", "") + "," + x.get("Pre-Depends", "")
        for clause in deps.split(","):
            if not clause.strip():
                continue
            for alt in clause.split("|"):
                r = resolve(alt)
                if r is not None:
                    todo.append(r)
                    break

def files(n):
    out = []
    for x in pkgs[n]:
        for lst in ("%s:%s.list" % (n, x.get("Architecture", "")), "%s.list" % n):
            path = os.path.join("/var/lib/dpkg/info", lst)
            if os.path.exists(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    out += f.read().split("\n")
                break
    return [p for p in out if p]

visible = set()
for n in seen:
    visible.update(files(n))
bins = {os.path.basename(p) for p in visible
        if re.match(r"^(/usr)?/s?bin/[^/]+$", p)}
for d in ("pc", "include", "lib", "bin"):
    os.makedirs(os.path.join(out, d), exist_ok=True)
for p in visible:
    if re.match(r"^/usr/(lib(/[^/]+)?|share)/pkgconfig/[^/]+\.pc$", p) and os.path.exists(p):
        dst = os.path.join(out, "pc", os.path.basename(p))
        if not os.path.lexists(dst):
            os.symlink(p, dst)
hidden = {"include": 0, "lib": 0, "bin": 0}
for n in sorted(set(pkgs) - seen):
    for p in files(n):
        if p in visible or os.path.isdir(p) or not os.path.lexists(p):
            continue
        if p.startswith("/usr/include/"):
            dst = os.path.join(out, "include", p[len("/usr/include/"):])
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "w") as f:
                f.write('#error "%s is in package %s, which make run does not install"\n'
                        % (p, n))
            hidden["include"] += 1
        elif re.match(r"^/usr/lib/([^/]+/)?lib[^/]+\.(so|a)$", p):
            dst = os.path.join(out, "lib", os.path.basename(p))
            with open(dst, "w") as f:
                f.write("/* %s is in package %s, which make run does not install */\n"
                        "INPUT(-lnot-installed-by-make-run-%s)\n" % (p, n, n))
            hidden["lib"] += 1
        elif (re.match(r"^(/usr)?/s?bin/[^/]+$", p) and os.path.basename(p) not in bins
              and os.access(p, os.X_OK)):
            dst = os.path.join(out, "bin", os.path.basename(p))
            with open(dst, "w") as f:
                f.write('#!/bin/sh\necho "%s: in package %s, which make run does not install"'
                        ' >&2\nexit 127\n' % (os.path.basename(p), n))
            os.chmod(dst, 0o755)
            hidden["bin"] += 1
print("fresh build: %d packages visible (%s and their dependencies); hidden: "
      "%d headers, %d libraries, %d programs of %d other packages"
      % (len(seen), " ".join(wanted), hidden["include"], hidden["lib"], hidden["bin"],
         len(set(pkgs) - seen)))
EOF

view=$work/view
# Everything below runs in the view, with a clean compiler environment.
unset CC CFLAGS CPPFLAGS LDFLAGS C_INCLUDE_PATH PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
export PKG_CONFIG_LIBDIR="$view/pc"
export CPATH="$view/include"
export LIBRARY_PATH="$view/lib"
export PATH="$view/bin:$PATH"

echo "fresh build: meson setup + ninja in $work/build"
meson setup "$work/build" "$src" --buildtype=debugoptimized >"$work/setup.log" 2>&1 || {
    tail -30 "$work/setup.log" >&2; fail "meson setup (log: $work/setup.log)"; }
ninja -C "$work/build" ${NINJA_JOBS:+-j "$NINJA_JOBS"} >"$work/ninja.log" 2>&1 || {
    grep -m5 -B2 -A3 'error' "$work/ninja.log" >&2 || tail -30 "$work/ninja.log" >&2
    fail "ninja (log: $work/ninja.log)"; }
bin=$work/build/kipuka
[ -x "$bin" ] || fail "no kipuka binary"

# As scripts/run.sh: init with the demo labels, an OTP, then serve.
srv=$work/srv
"$bin" init --dir "$srv" --label iot-fleet --label corp-devices --port 0 >"$work/init.out" \
    2>"$work/init.log" || { cat "$work/init.log" >&2; fail "kipuka init"; }
otp=$("$bin" otp create -c "$srv/kipuka.toml" --entity device-001 --ttl 24h 2>/dev/null)
[ -n "$otp" ] || fail "kipuka otp create printed no OTP"
"$bin" serve -c "$srv/kipuka.toml" >"$work/serve.out" 2>"$work/serve.log" &
pid=$!
port=
for _ in $(seq 1 400); do
    port=$(sed -n 's|.*listening on https://[^:]*:\([0-9]*\)/.*|\1|p' "$work/serve.out" | head -1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.025
done
[ -n "$port" ] || { tail -20 "$work/serve.log" >&2; fail "kipuka serve did not start"; }
code=$(curl -s --cacert "$srv/ca/ca.pem" -o "$work/cacerts.p7b" -w '%{http_code}' \
    "https://localhost:$port/.well-known/est/cacerts")
[ "$code" = 200 ] || fail "GET /cacerts answered $code, not 200"
n=$(base64 -d "$work/cacerts.p7b" | openssl pkcs7 -inform DER -print_certs 2>/dev/null |
    grep -c 'BEGIN CERTIFICATE')
[ "$n" -ge 1 ] || fail "the /cacerts body does not decode with openssl pkcs7"
kill -TERM "$pid"
wait "$pid" || fail "kipuka serve did not exit cleanly on SIGTERM"
pid=
echo "fresh build: ok (built without test-only packages; /cacerts answered 200 with $n certificate(s))"
