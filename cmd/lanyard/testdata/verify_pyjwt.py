"""Verify a Lanyard access token the way a FastAPI backend would: PyJWT's
PyJWKClient on the running JWKS, with algorithms, issuer and audience pinned.
Prints the claims a backend reads; exits non-zero when verification fails."""
import json
import sys

import jwt

jwks_url, token, issuer, audience, alg = sys.argv[1:6]
header = jwt.get_unverified_header(token)
if header.get("typ") != "at+jwt":
    sys.exit("wrong typ")
signing_key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
claims = jwt.decode(
    token,
    signing_key.key,
    algorithms=[alg],
    issuer=issuer,
    audience=audience,
    leeway=30,
    options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
)
print(json.dumps({
    "sub": claims["sub"],
    "sid": claims["sid"],
    "profile_complete": claims["profile_complete"],
    "kid": header["kid"],
}))
