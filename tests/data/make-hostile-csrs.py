#!/usr/bin/python3
"""Regenerate the hostile PKCS#10 requests in tests/data/csr/ that the openssl
CLI cannot write (checked in; run by hand from make-csrs.sh, never by the test
suite). Each is correctly signed, so that only the property under test can be
the reason it is refused. Needs Debian's python3-cryptography for keys and
signatures; the DER is written here, field by field (RFC 2986 4.1).

hostile-rsa-e1.der          RSA key with e = 1, "signed" with d = 1 (the
                            signature is the padded digest itself)
hostile-rsa-e3.der          RSA key with e = 3 (CA/B BR 6.1.6 SHOULD: refused)
hostile-rsa-params.der      rsaEncryption with parameters other than NULL
hostile-ec-hybrid.der       P-256 point in hybrid form (06/07, X9.62 4.3.6)
hostile-sha1.der            signed with sha1WithRSAEncryption
hostile-md5.der             signed with md5WithRSAEncryption
hostile-cn-bmp.der          CN as a BMPString
hostile-cn-printable-at.der CN as a PrintableString holding '@'
hostile-cn-nul.der          CN as a UTF8String with an embedded NUL
hostile-cn-escape.der       CN as a UTF8String with an ANSI escape sequence
hostile-cn-overlong.der     CN as a UTF8String with an overlong encoding of '/'
hostile-country-dollar.der  C = "U$" as a PrintableString
hostile-country-zz.der      C = "ZZ": PrintableString, but no ISO 3166 code
hostile-two-cn.der          two CNs
hostile-multi-rdn.der       CN and O in one (multi-valued) RDN
ec-compressed.der           a valid request whose P-256 point is compressed
                            (02/03)
cn-ber-constructed.der      a valid request whose CN is a BER constructed
                            UTF8String (two segments): accepted, issued as DER
"""
import hashlib
import os
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csr")


def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        head = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + head + content


def seq(*items):
    return tlv(0x30, b"".join(items))


def set_of(*items):
    return tlv(0x31, b"".join(sorted(items)))


def oid(dotted):
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def integer(v):
    b = v.to_bytes(v.bit_length() // 8 + 1, "big")
    return tlv(0x02, b)


def bits(b):
    return tlv(0x03, b"\x00" + b)


NULL = b"\x05\x00"
UTF8, PRINTABLE, IA5, BMP = 0x0C, 0x13, 0x16, 0x1E
CN, O, C = "2.5.4.3", "2.5.4.10", "2.5.4.6"
RSA_ENC = "1.2.840.113549.1.1.1"
EC_PUB, P256 = "1.2.840.10045.2.1", "1.2.840.10045.3.1.7"
SHA256_RSA, SHA1_RSA, MD5_RSA = (
    "1.2.840.113549.1.1.11",
    "1.2.840.113549.1.1.5",
    "1.2.840.113549.1.1.4",
)
ECDSA_SHA256 = "1.2.840.10045.4.3.2"


def atv(typ, tag, value):
    return seq(oid(typ), tlv(tag, value))


def name(*rdns):
    """rdns: each a list of (type, tag, value) in one RDN."""
    return seq(*[set_of(*[atv(*a) for a in rdn]) for rdn in rdns])


def cn(value, tag=UTF8):
    return name([(CN, tag, value)])


def san(host):
    ext = seq(oid("2.5.29.17"), tlv(0x04, seq(tlv(0x82, host))))
    return tlv(0xA0, seq(oid("1.2.840.113549.1.9.14"), set_of(seq(ext))))


def cri(subject, spki, attrs=None):
    return seq(integer(0), subject, spki, attrs if attrs is not None else tlv(0xA0, b""))


def csr(info, alg, sig):
    return seq(info, alg, bits(sig))


def rsa_spki(n, e, params=NULL):
    return seq(seq(oid(RSA_ENC), params), bits(seq(integer(n), integer(e))))


def ec_spki(point):
    return seq(seq(oid(EC_PUB), oid(P256)), bits(point))


def ec_point(key, form):
    nums = key.public_key().public_numbers()
    x, y = nums.x.to_bytes(32, "big"), nums.y.to_bytes(32, "big")
    if form == "uncompressed":
        return b"\x04" + x + y
    if form == "compressed":
        return bytes([0x02 | (nums.y & 1)]) + x
    return bytes([0x06 | (nums.y & 1)]) + x + y  # hybrid


def ec_signed(subject, key, form="uncompressed", host=None):
    info = cri(subject, ec_spki(ec_point(key, form)), san(host) if host else None)
    return csr(info, seq(oid(ECDSA_SHA256)), key.sign(info, ec.ECDSA(hashes.SHA256())))


def rsa_signed(info, key, alg_oid, digest):
    return csr(info, seq(oid(alg_oid), NULL), key.sign(info, padding.PKCS1v15(), digest))


# DigestInfo prefix for SHA-256 (RFC 8017 9.2 note 1)
SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def rsa_e1(n, subject):
    """e = 1: s^e mod n = s, so the EMSA-PKCS1-v1_5 block is its own signature."""
    info = cri(subject, rsa_spki(n, 1))
    k = (n.bit_length() + 7) // 8
    t = SHA256_PREFIX + hashlib.sha256(info).digest()
    em = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return csr(info, seq(oid(SHA256_RSA), NULL), em)


def write(fname, der):
    with open(os.path.join(OUT, fname), "wb") as f:
        f.write(der)


def main():
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    n = rsa_key.public_key().public_numbers().n
    ec_key = ec.generate_private_key(ec.SECP256R1())
    # hybrid form 07 needs an odd y
    while ec_key.public_key().public_numbers().y & 1 == 0:
        ec_key = ec.generate_private_key(ec.SECP256R1())

    write("hostile-rsa-e1.der", rsa_e1(n, cn(b"rsa-e1.example")))
    e3 = rsa.generate_private_key(public_exponent=3, key_size=2048)
    info = cri(cn(b"rsa-e3.example"), rsa_spki(e3.public_key().public_numbers().n, 3))
    write("hostile-rsa-e3.der", rsa_signed(info, e3, SHA256_RSA, hashes.SHA256()))
    info = cri(cn(b"rsa-params.example"), rsa_spki(n, 65537, tlv(0x04, b"not NULL")))
    write("hostile-rsa-params.der", rsa_signed(info, rsa_key, SHA256_RSA, hashes.SHA256()))
    write("hostile-ec-hybrid.der", ec_signed(cn(b"ec-hybrid.example"), ec_key, "hybrid"))

    info = cri(cn(b"sha1.example"), rsa_spki(n, 65537))
    write("hostile-sha1.der", rsa_signed(info, rsa_key, SHA1_RSA, hashes.SHA1()))
    info = cri(cn(b"md5.example"), rsa_spki(n, 65537))
    write("hostile-md5.der", rsa_signed(info, rsa_key, MD5_RSA, hashes.MD5()))

    write("hostile-cn-bmp.der", ec_signed(cn("bmp.example".encode("utf-16-be"), BMP), ec_key))
    write("hostile-cn-printable-at.der", ec_signed(cn(b"dev@example", PRINTABLE), ec_key))
    write("hostile-cn-nul.der", ec_signed(cn(b"good.example\x00.evil.example"), ec_key))
    write("hostile-cn-escape.der", ec_signed(cn(b"dev\x1b[2J\x1b[31mroot"), ec_key))
    write("hostile-cn-overlong.der", ec_signed(cn(b"a\xc0\xafb.example"), ec_key))
    write(
        "hostile-country-dollar.der",
        ec_signed(name([(C, PRINTABLE, b"U$")], [(CN, UTF8, b"c.example")]), ec_key),
    )
    write(
        "hostile-country-zz.der",
        ec_signed(name([(C, PRINTABLE, b"ZZ")], [(CN, UTF8, b"c.example")]), ec_key),
    )
    write(
        "hostile-two-cn.der",
        ec_signed(name([(CN, UTF8, b"a.example")], [(CN, UTF8, b"b.example")]), ec_key),
    )
    write(
        "hostile-multi-rdn.der",
        ec_signed(name([(CN, UTF8, b"m.example"), (O, UTF8, b"Kipuka")]), ec_key),
    )

    good = ec.generate_private_key(ec.SECP256R1())
    write(
        "ec-compressed.der",
        ec_signed(cn(b"ec-compressed.example"), good, "compressed", b"ec-compressed.example"),
    )
    # UTF8String, constructed (0x2C), of two primitive segments
    ber_cn = seq(set_of(seq(oid(CN), tlv(0x2C, tlv(UTF8, b"ber.") + tlv(UTF8, b"example")))))
    write("cn-ber-constructed.der", ec_signed(ber_cn, good))
    return 0


if __name__ == "__main__":
    sys.exit(main())
