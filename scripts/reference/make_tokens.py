"""Makes JWTs with PyJWT for siotap's tests: every algorithm family, and the ways tokens fail.

Prints JSON: {"cases": [{"name", "token", "key": {"secret"|"pem"|"jwks": ...}|null,
"verified": true|false|null, "code": "<siotap failure code>"|null}]}.
"""
import base64
import hashlib
import hmac
import json
import time
import warnings

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

warnings.filterwarnings("ignore")  # PyJWT warns on short HMAC secrets; they are the point
now = int(time.time())
claims = {"id": 42, "name": "ada", "rooms": ["public-1"], "iat": now, "exp": now + 3600}
cases = []


def pem(private_key):
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def add(name, token, key, verified, code=None):
    cases.append({"name": name, "token": token, "key": key, "verified": verified, "code": code})


long_secret = "a-secret-that-is-long-enough-for-hs512-because-it-has-64-bytes!!"
for alg in ("HS256", "HS384", "HS512"):
    add(alg, jwt.encode(claims, long_secret, algorithm=alg), {"secret": long_secret}, True)
# Shorter than the digest: PyJWT warns, jwt-kit would trap; siotap must verify it.
add("HS256 short secret", jwt.encode(claims, "wrong", algorithm="HS256"), {"secret": "wrong"}, True)
add("HS256 seed default secret", jwt.encode(claims, "your-secret-key", algorithm="HS256"), {"secret": "your-secret-key"}, True)
add("HS256 other secret", jwt.encode(claims, "your-secret-key", algorithm="HS256"), {"secret": "not-the-secret"}, False, "bad_signature")
add("HS256 no key", jwt.encode(claims, "s", algorithm="HS256"), None, None)

rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"):
    add(alg, jwt.encode(claims, rsa_key, algorithm=alg), {"pem": pem(rsa_key)}, True)
other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
add("RS256 other key", jwt.encode(claims, other_rsa, algorithm="RS256"), {"pem": pem(rsa_key)}, False, "bad_signature")

for alg, curve in (("ES256", ec.SECP256R1()), ("ES384", ec.SECP384R1()), ("ES512", ec.SECP521R1())):
    key = ec.generate_private_key(curve)
    add(alg, jwt.encode(claims, key, algorithm=alg), {"pem": pem(key)}, True)
ec256 = ec.generate_private_key(ec.SECP256R1())
ec384 = ec.generate_private_key(ec.SECP384R1())
add("ES384 token, P-256 key", jwt.encode(claims, ec384, algorithm="ES384"), {"pem": pem(ec256)}, False, "algorithm_mismatch")

ed_key = ed25519.Ed25519PrivateKey.generate()
add("EdDSA", jwt.encode(claims, ed_key, algorithm="EdDSA"), {"pem": pem(ed_key)}, True)

# Key confusion: an HS256 token whose secret is the RSA public key's PEM.
header = {"alg": "HS256", "typ": "JWT"}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
signature = hmac.new(pem(rsa_key).encode(), signing_input.encode(), hashlib.sha256).digest()
add("HS256 signed with the public key", signing_input + "." + b64(signature), {"pem": pem(rsa_key)}, False, "algorithm_mismatch")
add("RS256 token, HMAC secret", jwt.encode(claims, rsa_key, algorithm="RS256"), {"secret": "x"}, False, "algorithm_mismatch")

expired = dict(claims, iat=now - 7200, exp=now - 3600)
add("expired", jwt.encode(expired, long_secret, algorithm="HS256"), {"secret": long_secret}, False, "expired")
early = dict(claims, nbf=now + 3600)
add("not yet valid", jwt.encode(early, long_secret, algorithm="HS256"), {"secret": long_secret}, False, "not_yet_valid")

unsigned = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode()) + "."
add("alg none", unsigned, {"secret": long_secret}, False, "alg_none_refused")
good = jwt.encode(claims, long_secret, algorithm="HS256")
head, body, sig = good.split(".")
tampered_claims = b64(json.dumps(dict(claims, id=1)).encode())
add("tampered claims", head + "." + tampered_claims + "." + sig, {"secret": long_secret}, False, "bad_signature")
add("two parts", head + "." + body, {"secret": long_secret}, False, "malformed")
# RFC 7515 §4.1.11: a crit parameter the recipient does not understand makes the token invalid,
# whatever the signature (PyJWT signs it as asked).
add("crit unknown", jwt.encode(claims, long_secret, algorithm="HS256", headers={"crit": ["x-bound"], "x-bound": 1}), {"secret": long_secret}, False, "unsupported_crit")
# A time claim that is no number: PyJWT's and jsonwebtoken's decode refuse it.
add("exp as a string", jwt.encode(dict(claims, exp="0"), long_secret, algorithm="HS256"), {"secret": long_secret}, False, "invalid_time_claim")
add("header not JSON", b64(b"not json") + "." + body + "." + sig, None, False, "malformed")

# JWKS: chosen by kid; an unknown kid never falls back to another key.
k1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
k2 = ec.generate_private_key(ec.SECP256R1())
jwk1 = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k1.public_key()))
jwk1["kid"] = "k1"
jwk2 = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(k2.public_key()))
jwk2["kid"] = "k2"
jwks = json.dumps({"keys": [jwk1, jwk2]})
add("JWKS kid k1", jwt.encode(claims, k1, algorithm="RS256", headers={"kid": "k1"}), {"jwks": jwks}, True)
add("JWKS kid k2", jwt.encode(claims, k2, algorithm="ES256", headers={"kid": "k2"}), {"jwks": jwks}, True)
add("JWKS unknown kid", jwt.encode(claims, k1, algorithm="RS256", headers={"kid": "k9"}), {"jwks": jwks}, False, "no_key_for_kid")
add("JWKS kid of the wrong key", jwt.encode(claims, k1, algorithm="RS256", headers={"kid": "k2"}), {"jwks": jwks}, False, "algorithm_mismatch")
add("JWKS no kid, one RSA key fits", jwt.encode(claims, k1, algorithm="RS256"), {"jwks": jwks}, True)

# For the Swift tests that sign with jwt-kit: an RSA key of PyJWT's making.
rsa_private_pem = rsa_key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
print(json.dumps({"cases": cases, "rsa_private_pem": rsa_private_pem, "rsa_public_pem": pem(rsa_key)}))
