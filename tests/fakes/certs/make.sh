#!/bin/sh
# make.sh: regenerate the TEST-ONLY certificates in this folder (see
# README).  Not run by the build or the tests: the files are committed, so
# a machine without the openssl tool still runs the TLS tests.  Needs
# openssl(1) 1.1.1 or later.  Writes into the folder it lives in.
set -e
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
days=36500 # ~100 years: these must not expire under the tests

ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

# a self-signed CA: $1 file stem, $2 common name
ca() {
    ec "$tmp/$1.key"
    openssl req -new -x509 -key "$tmp/$1.key" -sha256 -days $days \
        -subj "/O=parley tests/CN=$2" -out "$1.pem" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash"
}

# a server certificate signed by the test CA: $1 stem, $2 CN, $3 SAN
leaf() {
    ec "$1.key"
    openssl req -new -key "$1.key" -subj "/O=parley tests/CN=$2" \
        -out "$tmp/$1.csr"
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" "subjectAltName=$3" \
        "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" \
        >"$tmp/$1.ext"
    openssl x509 -req -in "$tmp/$1.csr" -CA ca.pem -CAkey "$tmp/ca.key" \
        -CAcreateserial -CAserial "$tmp/ca.srl" -sha256 -days $days \
        -extfile "$tmp/$1.ext" -out "$1.pem"
}

ca ca "parley test CA"
ca other-ca "parley untrusted test CA"
leaf server localhost "DNS:localhost,IP:127.0.0.1"
leaf other other.invalid "DNS:other.invalid"
# the test CA alone in a hashed folder, for SSL_CERT_DIR
rm -rf cadir
mkdir cadir
cp ca.pem "cadir/$(openssl x509 -hash -noout -in ca.pem).0"
chmod 644 ./*.key ./*.pem cadir/*
