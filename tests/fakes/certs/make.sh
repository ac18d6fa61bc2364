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

# a server certificate: $1 stem, $2 CN, $3 SAN, $4 the CA's stem
leaf() {
    ec "$1.key"
    openssl req -new -key "$1.key" -subj "/O=parley tests/CN=$2" \
        -out "$tmp/$1.csr"
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" "subjectAltName=$3" \
        "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" \
        >"$tmp/$1.ext"
    openssl x509 -req -in "$tmp/$1.csr" -CA "$4.pem" -CAkey "$tmp/$4.key" \
        -CAcreateserial -CAserial "$tmp/$4.srl" -sha256 -days $days \
        -extfile "$tmp/$1.ext" -out "$1.pem"
}

local_san="DNS:localhost,IP:127.0.0.1"
ca ca "parley test CA"
ca ca2 "parley test CA 2"
ca other-ca "parley untrusted test CA"
leaf server localhost "$local_san" ca
leaf server2 localhost "$local_san" ca2
leaf untrusted localhost "$local_san" other-ca
leaf other other.invalid "DNS:other.invalid" ca
# CA 2 alone in a hashed folder, for SSL_CERT_DIR
rm -rf cadir
mkdir cadir
cp ca2.pem "cadir/$(openssl x509 -hash -noout -in ca2.pem).0"
chmod 644 ./*.key ./*.pem cadir/*
