#!/usr/bin/env bash
# Makes the certificates the interop runner gives servers: /certs/cert.pem is a chain of
# CHAINLEN certificates (leaf first) below a root CA (ca.pem, not in the chain), and
# priv.key is the leaf's P-256 key in the traditional "EC PARAMETERS" + "EC PRIVATE KEY"
# PEM form (not PKCS#8), as `openssl ecparam -genkey` writes it.
# usage: certs.sh DIR [CHAINLEN=1]
set -euo pipefail
dir=${1:?usage: certs.sh DIR [CHAINLEN]}
len=${2:-1}
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/ca.ext" <<'EXT'
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
EXT
printf 'subjectAltName=DNS:server,DNS:server4,DNS:server6,DNS:server46\nbasicConstraints=CA:FALSE\n' >"$tmp/leaf.ext"

openssl ecparam -name prime256v1 -genkey -out "$tmp/key_0.pem" 2>/dev/null
openssl req -x509 -sha256 -days 30 -key "$tmp/key_0.pem" -out "$tmp/cert_0.pem" \
  -subj "/O=interop runner Root Certificate Authority/" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
for i in $(seq 1 "$len"); do
  subj="interop runner intermediate $i"; ext="$tmp/ca.ext"
  if [ "$i" = "$len" ]; then subj="interop runner leaf"; ext="$tmp/leaf.ext"; fi
  openssl ecparam -name prime256v1 -genkey -out "$tmp/key_$i.pem" 2>/dev/null
  openssl req -new -key "$tmp/key_$i.pem" -out "$tmp/req.csr" -subj "/O=$subj/" 2>/dev/null
  openssl x509 -req -sha256 -days 30 -in "$tmp/req.csr" -out "$tmp/cert_$i.pem" \
    -CA "$tmp/cert_$((i - 1)).pem" -CAkey "$tmp/key_$((i - 1)).pem" -CAcreateserial -CAserial "$tmp/serial" \
    -extfile "$ext" 2>/dev/null
done
cp "$tmp/cert_0.pem" "$dir/ca.pem"
cp "$tmp/key_$len.pem" "$dir/priv.key"
: >"$dir/cert.pem"
for i in $(seq "$len" -1 1); do cat "$tmp/cert_$i.pem" >>"$dir/cert.pem"; done
