"""``crypto.subtle`` on the host, with the ``cryptography`` package (OpenSSL).

The runtime (``udf/js/subtle.js``) keeps a CryptoKey's material itself (DER or
raw bytes, as this module normalized it at import) and sends it with each
sign/verify, so the host holds no per-call key state. Ops (``headwater/crypto/*``):
``digest``, ``importKey``, ``sign``, ``verify``; bytes travel base64-encoded.

Algorithms: digests SHA-1/256/384/512; HMAC; RSASSA-PKCS1-v1_5 and RSA-PSS; ECDSA on
P-256 and P-384. Key formats: raw (HMAC, EC public), jwk, spki, pkcs8. Errors
carry the DOMException name first ("DataError: ..."), which the runtime turns
into a DOMException. ECDSA and RSA-PSS signatures are randomized: queries and
mutations may not make them (Convex refuses them there too).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from udf.errors import SyscallError

_HASHES = {
    "SHA-1": hashes.SHA1,
    "SHA-256": hashes.SHA256,
    "SHA-384": hashes.SHA384,
    "SHA-512": hashes.SHA512,
}
_HASHLIB = {"SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}
_CURVES = {"P-256": (ec.SECP256R1, 32), "P-384": (ec.SECP384R1, 48)}
_RSA = ("RSASSA-PKCS1-v1_5", "RSA-PSS")
_JWK_RSA_ALG = {"RSASSA-PKCS1-v1_5": "RS", "RSA-PSS": "PS"}
OPS = (
    "headwater/crypto/digest",
    "headwater/crypto/importKey",
    "headwater/crypto/sign",
    "headwater/crypto/verify",
)


def _error(name: str, message: str) -> SyscallError:
    return SyscallError(f"{name}: {message}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise _error("DataError", "expected bytes")
    return base64.b64decode(text)


def _unb64url(text: Any, field: str) -> bytes:
    if not isinstance(text, str):
        raise _error("DataError", f"the JWK has no '{field}'")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int(text: Any, field: str) -> int:
    return int.from_bytes(_unb64url(text, field), "big")


def _hash_name(algorithm: dict[str, Any]) -> str:
    name = algorithm.get("hash")
    if name not in _HASHES:
        raise _error("NotSupportedError", f"Unrecognized hash algorithm: {name}")
    return name


def handle(op: str, args_json: str, *, deterministic: bool) -> str:
    """One crypto op; ``deterministic``: the call is a query or mutation."""
    try:
        args = json.loads(args_json)
    except ValueError as exc:
        raise SyscallError(f"Syscall {op} received invalid JSON arguments.") from exc
    name = op.rsplit("/", 1)[1]
    try:
        if name == "digest":
            algorithm = args.get("algorithm")
            if algorithm not in _HASHLIB:
                raise _error("NotSupportedError", f"Unrecognized algorithm name: {algorithm}")
            return json.dumps(
                {"result": _b64(hashlib.new(_HASHLIB[algorithm], _unb64(args["data"])).digest())}
            )
        if name == "importKey":
            return json.dumps(_import_key(args))
        if name == "sign":
            signed = _sign(args["algorithm"], args["key"], _unb64(args["data"]), deterministic)
            return json.dumps({"result": _b64(signed)})
        if name == "verify":
            ok = _verify(
                args["algorithm"], args["key"], _unb64(args["signature"]), _unb64(args["data"])
            )
            return json.dumps({"result": ok})
    except (ValueError, TypeError, KeyError, UnsupportedAlgorithm) as exc:
        raise _error("DataError", str(exc) or type(exc).__name__) from exc
    raise SyscallError(f"Unknown async operation {op}")


# --- import --------------------------------------------------------------------------


def _import_key(args: dict[str, Any]) -> dict[str, Any]:
    fmt = args.get("format")
    algorithm = dict(args.get("algorithm") or {})
    name = algorithm.get("name")
    data = args.get("keyData")
    if name == "HMAC":
        hash_name = _hash_name(algorithm)
        if fmt == "raw":
            secret = _unb64(data)
        elif fmt == "jwk":
            if data.get("kty") != "oct":
                raise _error("DataError", "'kty' must be 'oct' for an HMAC key")
            secret = _unb64url(data.get("k"), "k")
        else:
            raise _error("NotSupportedError", f"Unsupported key format for HMAC: {fmt}")
        if not secret:
            raise _error("DataError", "HMAC key data must not be empty")
        length = algorithm.get("length", len(secret) * 8)
        out_alg = {"name": "HMAC", "hash": {"name": hash_name}, "length": length}
        return {"type": "secret", "algorithm": out_alg, "material": _b64(secret)}
    if name in _RSA:
        hash_name = _hash_name(algorithm)
        key = _load_asymmetric(fmt, data, name)
        if not isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
            raise _error("DataError", "the key is not an RSA key")
        numbers = (
            key.public_key().public_numbers()
            if isinstance(key, rsa.RSAPrivateKey)
            else key.public_numbers()
        )
        out_alg = {
            "name": name,
            "hash": {"name": hash_name},
            "modulusLength": key.key_size,
            "publicExponent": _b64(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        }
        return _key_answer(key, out_alg)
    if name == "ECDSA":
        curve = algorithm.get("namedCurve")
        if curve not in _CURVES:
            raise _error("NotSupportedError", f"Unsupported named curve: {curve}")
        if fmt == "raw":
            try:
                key = ec.EllipticCurvePublicKey.from_encoded_point(
                    _CURVES[curve][0](), _unb64(data)
                )
            except ValueError as exc:
                raise _error("DataError", "invalid EC public key") from exc
        else:
            key = _load_asymmetric(fmt, data, name)
        if not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
            raise _error("DataError", "the key is not an EC key")
        if key.curve.name != _CURVES[curve][0].name:
            raise _error("DataError", "the key's curve is not the one named")
        return _key_answer(key, {"name": "ECDSA", "namedCurve": curve})
    raise _error("NotSupportedError", f"Unrecognized algorithm name: {name}")


def _key_answer(key: Any, algorithm: dict[str, Any]) -> dict[str, Any]:
    if hasattr(key, "private_bytes"):
        material = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return {"type": "private", "algorithm": algorithm, "material": _b64(material)}
    material = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {"type": "public", "algorithm": algorithm, "material": _b64(material)}


def _load_asymmetric(fmt: Any, data: Any, name: str) -> Any:
    try:
        if fmt == "spki":
            return serialization.load_der_public_key(_unb64(data))
        if fmt == "pkcs8":
            return serialization.load_der_private_key(_unb64(data), password=None)
    except ValueError as exc:
        raise _error("DataError", f"invalid {fmt} key data") from exc
    if fmt == "jwk":
        return _from_jwk(data, name)
    raise _error("NotSupportedError", f"Unsupported key format for {name}: {fmt}")


def _from_jwk(jwk: Any, name: str) -> Any:
    if not isinstance(jwk, dict):
        raise _error("DataError", "a JWK must be an object")
    kty = jwk.get("kty")
    if name in _RSA:
        if kty != "RSA":
            raise _error("DataError", "'kty' must be 'RSA'")
        public = rsa.RSAPublicNumbers(_int(jwk.get("e"), "e"), _int(jwk.get("n"), "n"))
        if "d" not in jwk:
            return public.public_key()
        return rsa.RSAPrivateNumbers(
            _int(jwk.get("p"), "p"),
            _int(jwk.get("q"), "q"),
            _int(jwk.get("d"), "d"),
            _int(jwk.get("dp"), "dp"),
            _int(jwk.get("dq"), "dq"),
            _int(jwk.get("qi"), "qi"),
            public,
        ).private_key()
    if kty != "EC":
        raise _error("DataError", "'kty' must be 'EC'")
    curve = jwk.get("crv")
    if curve not in _CURVES:
        raise _error("NotSupportedError", f"Unsupported named curve: {curve}")
    public = ec.EllipticCurvePublicNumbers(
        _int(jwk.get("x"), "x"), _int(jwk.get("y"), "y"), _CURVES[curve][0]()
    )
    if "d" not in jwk:
        return public.public_key()
    return ec.EllipticCurvePrivateNumbers(_int(jwk.get("d"), "d"), public).private_key()


# --- sign / verify -------------------------------------------------------------------


def _check(algorithm: dict[str, Any], key: dict[str, Any], key_type: str) -> str:
    name = algorithm.get("name")
    if name != key["algorithm"]["name"] or key["type"] not in (key_type, "secret"):
        raise _error("InvalidAccessError", "invalid algorithm for key")
    return name


def _rsa_padding(algorithm: dict[str, Any], hash_name: str) -> Any:
    if algorithm["name"] == "RSA-PSS":
        return padding.PSS(padding.MGF1(_HASHES[hash_name]()), int(algorithm.get("saltLength", 0)))
    return padding.PKCS1v15()


def _sign(
    algorithm: dict[str, Any], key: dict[str, Any], data: bytes, deterministic: bool
) -> bytes:
    name = _check(algorithm, key, "private")
    material = _unb64(key["material"])
    if name == "HMAC":
        return hmac.new(material, data, _HASHLIB[key["algorithm"]["hash"]["name"]]).digest()
    if deterministic and name in ("ECDSA", "RSA-PSS"):
        raise SyscallError(
            "Can't use cryptographic randomness in queries and mutations. Please consider using "
            "an action. See https://docs.convex.dev/functions/actions for more details."
        )
    private = serialization.load_der_private_key(material, password=None)
    if name == "ECDSA":
        hash_name = _hash_name(algorithm)
        der = private.sign(data, ec.ECDSA(_HASHES[hash_name]()))
        r, s = decode_dss_signature(der)
        size = _CURVES[key["algorithm"]["namedCurve"]][1]
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    hash_name = key["algorithm"]["hash"]["name"]
    return private.sign(data, _rsa_padding(algorithm, hash_name), _HASHES[hash_name]())


def _verify(algorithm: dict[str, Any], key: dict[str, Any], signature: bytes, data: bytes) -> bool:
    name = _check(algorithm, key, "public")
    material = _unb64(key["material"])
    if name == "HMAC":
        expected = hmac.new(material, data, _HASHLIB[key["algorithm"]["hash"]["name"]]).digest()
        return hmac.compare_digest(expected, signature)
    if key["type"] == "private":
        raise _error("InvalidAccessError", "invalid key type for verify")
    public = serialization.load_der_public_key(material)
    try:
        if name == "ECDSA":
            size = _CURVES[key["algorithm"]["namedCurve"]][1]
            if len(signature) != 2 * size:
                return False
            der = encode_dss_signature(
                int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            )
            public.verify(der, data, ec.ECDSA(_HASHES[_hash_name(algorithm)]()))
        else:
            hash_name = key["algorithm"]["hash"]["name"]
            public.verify(signature, data, _rsa_padding(algorithm, hash_name), _HASHES[hash_name]())
    except InvalidSignature:
        return False
    return True
