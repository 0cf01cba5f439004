#!/bin/sh
# Regenerate the PKCS#10 test objects in tests/data/csr/ (checked in; run by
# hand, never by the test suite). Uses only the openssl CLI and POSIX tools.
#
# Valid requests carry CN=<name>.example and an extensionRequest with
# subjectAltName = DNS:<name>.example, IP:192.0.2.1 unless noted.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out="$here/csr"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$out"

# req NAME NEWKEY-ARGS...: a CSR for a fresh key with CN and SAN.
req() {
    name=$1
    shift
    openssl req -new -nodes -keyout "$tmp/$name.key" "$@" -subj "/CN=$name.example" \
        -addext "subjectAltName=DNS:$name.example,IP:192.0.2.1" \
        -outform DER -out "$out/$name.der" 2>/dev/null
}

# Key types we accept (enum key_type).
req ec-p256 -newkey ec -pkeyopt ec_paramgen_curve:P-256
req ec-p384 -newkey ec -pkeyopt ec_paramgen_curve:P-384
req rsa-2048 -newkey rsa:2048
req rsa-3072 -newkey rsa:3072
req rsa-4096 -newkey rsa:4096

# Key types that parse but that no label accepts (key_type -1).
req rsa-1024 -newkey rsa:1024
req ec-p521 -newkey ec -pkeyopt ec_paramgen_curve:P-521
req ed25519 -newkey ed25519
# P-256 with explicit curve parameters instead of the named curve (RFC 5480 2.1.1).
openssl ecparam -name prime256v1 -param_enc explicit -genkey -noout -out "$tmp/explicit.key"
openssl req -new -key "$tmp/explicit.key" -subj "/CN=ec-p256-explicit.example" \
    -addext "subjectAltName=DNS:ec-p256-explicit.example,IP:192.0.2.1" \
    -outform DER -out "$out/ec-p256-explicit.der"

# No extensionRequest at all.
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$tmp/nosan.key" \
    -subj "/O=Kipuka Test/CN=nosan.example" -outform DER -out "$out/nosan.der" 2>/dev/null

# challengePassword attribute (RFC 2985 5.4.1), IPv6 and email SANs.
cat >"$tmp/challenge.cnf" <<'EOF'
[req]
prompt = no
distinguished_name = dn
attributes = attrs
req_extensions = ext
[dn]
CN = challenge.example
[attrs]
challengePassword = s3cret-otp-value
[ext]
subjectAltName = DNS:challenge.example, IP:2001:db8::1, email:ops@challenge.example
EOF
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$tmp/ch.key" \
    -config "$tmp/challenge.cnf" -outform DER -out "$out/challenge.der" 2>/dev/null

# Signed requests whose subjectAltName extension is malformed: an OCTET STRING
# instead of GeneralNames, and a dNSName with an embedded NUL
# ("a\0.evil.example", the null-prefix trick).
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$tmp/bs.key" \
    -subj "/CN=bad-san.example" -addext "subjectAltName=DER:0403666f6f" \
    -outform DER -out "$out/bad-san.der" 2>/dev/null
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$tmp/sn.key" \
    -subj "/CN=san-nul.example" \
    -addext "subjectAltName=DER:3011820f61002e6576696c2e6578616d706c65" \
    -outform DER -out "$out/san-nul.der" 2>/dev/null

# Broken signature: flip the low bit of the last byte, which in an RSA request
# is inside the signature BIT STRING.
src="$out/rsa-2048.der"
n=$(wc -c <"$src")
head -c $((n - 1)) "$src" >"$out/bad-signature.der"
last=$(tail -c 1 "$src" | od -An -tu1 | tr -d ' \n')
# shellcheck disable=SC2059
printf "\\$(printf '%03o' $((last ^ 1)))" >>"$out/bad-signature.der"
openssl asn1parse -inform DER -in "$out/bad-signature.der" >/dev/null
# (openssl req -verify exits 0 either way in 3.0: look at what it says.)
if openssl req -inform DER -in "$out/bad-signature.der" -noout -verify 2>&1 | grep -q 'verify OK'
then
    echo "bad-signature.der still verifies" >&2
    exit 1
fi

# Encoding damage.
head -c $((n / 2)) "$src" >"$out/truncated.der"
cat "$src" >"$out/trailing-garbage.der"
printf 'garbage\n' >>"$out/trailing-garbage.der"
: >"$out/empty.der"
openssl rand -out "$out/junk.der" 512

# A well-formed, correctly signed request of about 30 KB (1800 SANs): over
# CSR_MAX_DER, so it must be refused on size alone.
sans="DNS:host0.example"
i=1
while [ $i -lt 1800 ]; do
    sans="$sans,DNS:host$i.example"
    i=$((i + 1))
done
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$tmp/big.key" \
    -subj "/CN=oversize.example" -addext "subjectAltName=$sans" \
    -outform DER -out "$out/oversize-30k.der" 2>/dev/null

# Correctly signed requests that the openssl CLI cannot write: hostile keys,
# weak signature digests, subjects with bad strings, and a valid request with
# a compressed EC point (Debian's python3-cryptography).
/usr/bin/python3 "$here/make-hostile-csrs.py"

ls -l "$out"
