#!/bin/sh
# `make run`: on first run create the demo deployment in ./var, print an OTP
# and the exact curl lines to enroll with it, then serve.
set -eu
bin=./build/kipuka
dir=./var
cfg=$dir/kipuka.toml
if [ ! -f "$cfg" ]; then
    "$bin" init --dir "$dir" --label iot-fleet --label corp-devices
fi
otp=$("$bin" otp create -c "$cfg" --entity device-001 --ttl 24h 2>/dev/null)
cat <<MSG

kipuka demo deployment in $dir (config $cfg)
One-time password for entity device-001 (single use, 24 h): $otp

Enroll from another terminal:

  curl -s --cacert $dir/ca/ca.pem -o cacerts.p7b https://localhost:9443/.well-known/est/cacerts
  base64 -d cacerts.p7b | openssl pkcs7 -inform DER -print_certs -out ca-chain.pem
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \\
      -keyout device.key -out device.csr -nodes -subj "/CN=device-001.example.com"
  openssl req -in device.csr -outform DER | base64 > device.csr.b64
  curl -X POST --cacert ca-chain.pem -u "device-001:$otp" \\
      -H "Content-Type: application/pkcs10" --data-binary @device.csr.b64 \\
      -o enrolled.p7b https://localhost:9443/.well-known/est/simpleenroll
  base64 -d enrolled.p7b | openssl pkcs7 -inform DER -print_certs -out device.crt

Then renew it over EST-coaps (DTLS on UDP 5684, when [coap] is enabled;
coap-client-openssl is in Debian's libcoap3-bin):

  openssl req -new -key device.key -subj "/CN=device-001.example.com" -outform DER -out renew.der
  coap-client-openssl -m post -t 286 -f renew.der -c device.crt -j device.key \\
      -R ca-chain.pem -o renewed.p7 coaps://127.0.0.1:5684/est/sren

More OTPs: $bin otp create --entity NAME     Issued: $bin cert list
MSG
exec "$bin" serve -c "$cfg"
