"""crypto.subtle: known answers for digests and HMAC, RSA and ECDSA signatures made
and checked in the runtime and against Python's cryptography, and what queries and
mutations may do (the deterministic part) in Convex's words."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

HEX = """
  const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
"""
B64 = """
  const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const b64 = (b) => btoa(String.fromCharCode(...new Uint8Array(b)));
"""


@pytest.mark.parametrize("kind", ["action", "query", "mutation"])
def test_digests_match_known_answers(run, kind):
    code = (
        HEX
        + """
      const data = new TextEncoder().encode("abc");
      const out = {};
      for (const name of ["SHA-1", "SHA-256", "SHA-384", "sha-512"]) {
        out[name] = hex(await crypto.subtle.digest(name, data));
      }
      return out;
    """
    )
    got = run(code, kind)
    for name, algorithm in [
        ("SHA-1", "sha1"),
        ("SHA-256", "sha256"),
        ("SHA-384", "sha384"),
        ("sha-512", "sha512"),
    ]:
        assert got[name] == hashlib.new(algorithm, b"abc").hexdigest()
    assert got["SHA-256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize("kind", ["action", "query"])
def test_hmac_sign_and_verify(run, kind):
    code = (
        HEX
        + """
      const enc = new TextEncoder();
      const key = await crypto.subtle.importKey("raw", enc.encode("key"),
        { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
      const data = enc.encode("The quick brown fox jumps over the lazy dog");
      const sig = await crypto.subtle.sign("HMAC", key, data);
      const jwkKey = await crypto.subtle.importKey("jwk", { kty: "oct", k: "a2V5" },
        { name: "HMAC", hash: { name: "SHA-256" } }, false, ["verify"]);
      return [hex(sig), await crypto.subtle.verify("HMAC", key, sig, data),
              await crypto.subtle.verify("HMAC", jwkKey, sig, data),
              await crypto.subtle.verify("HMAC", key, sig, enc.encode("other")),
              key.type, key.algorithm.name, key.algorithm.hash.name, key.usages];
    """
    )
    expected = hmac.new(
        b"key", b"The quick brown fox jumps over the lazy dog", "sha256"
    ).hexdigest()
    assert expected == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert run(code, kind) == [
        expected,
        True,
        True,
        False,
        "secret",
        "HMAC",
        "SHA-256",
        ["sign", "verify"],
    ]


def _der_b64(key, private: bool) -> str:
    if private:
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    else:
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return base64.b64encode(der).decode()


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize(
    ("algorithm", "sign_params"),
    [
        ('{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }', '"RSASSA-PKCS1-v1_5"'),
        ('{ name: "RSA-PSS", hash: "SHA-256" }', '{ name: "RSA-PSS", saltLength: 32 }'),
    ],
)
def test_rsa_sign_then_verify_and_python_checks_it(run, algorithm, sign_params):
    code = (
        B64
        + f"""
      const imp = (f, k, u) => crypto.subtle.importKey(f, unb64(k), {algorithm}, true, [u]);
      const priv = await imp("pkcs8", input.priv, "sign");
      const pub = await imp("spki", input.pub, "verify");
      const data = new TextEncoder().encode("signed by the runtime");
      const sig = await crypto.subtle.sign({sign_params}, priv, data);
      return [b64(sig), await crypto.subtle.verify({sign_params}, pub, sig, data),
              await crypto.subtle.verify({sign_params}, pub, sig, new TextEncoder().encode("x")),
              pub.algorithm.modulusLength, Array.from(pub.algorithm.publicExponent)];
    """
    )
    keys = {"priv": _der_b64(RSA_KEY, True), "pub": _der_b64(RSA_KEY, False)}
    sig, ok, wrong, bits, exponent = run(code, input=keys)
    assert (ok, wrong, bits, exponent) == (True, False, 2048, [1, 0, 1])
    pad = (
        padding.PKCS1v15()
        if "PKCS1" in algorithm
        else padding.PSS(padding.MGF1(hashes.SHA256()), 32)
    )
    RSA_KEY.public_key().verify(
        base64.b64decode(sig), b"signed by the runtime", pad, hashes.SHA256()
    )


def test_ecdsa_sign_then_verify_and_python_checks_it(run):
    code = (
        B64
        + """
      const alg = { name: "ECDSA", namedCurve: "P-256" };
      const priv = await crypto.subtle.importKey("pkcs8", unb64(input.priv), alg, false, ["sign"]);
      const pub = await crypto.subtle.importKey("spki", unb64(input.pub), alg, true, ["verify"]);
      const data = new TextEncoder().encode("signed by the runtime");
      const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, priv, data);
      const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, pub, sig, data);
      return [b64(sig), ok];
    """
    )
    keys = {"priv": _der_b64(EC_KEY, True), "pub": _der_b64(EC_KEY, False)}
    sig, ok = run(code, input=keys)
    raw = base64.b64decode(sig)
    assert ok is True and len(raw) == 64  # r || s, as WebCrypto shapes it
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    EC_KEY.public_key().verify(der, b"signed by the runtime", ec.ECDSA(hashes.SHA256()))


def _b64url(n: int, size: int | None = None) -> str:
    raw = n.to_bytes(size or (n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize("kind", ["action", "query", "mutation"])
def test_signatures_made_by_python_verify_with_jwk_and_raw_keys(run, kind):
    data = b"signed by python"
    rsa_sig = RSA_KEY.sign(data, padding.PKCS1v15(), hashes.SHA384())
    p384 = ec.generate_private_key(ec.SECP384R1())
    r_s = p384.sign(data, ec.ECDSA(hashes.SHA384()))
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(r_s)
    ec_sig = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    numbers = RSA_KEY.public_key().public_numbers()
    pub = p384.public_key()
    raw_point = pub.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    given = {
        "rsaJwk": {"kty": "RSA", "n": _b64url(numbers.n), "e": _b64url(numbers.e)},
        "ecJwk": {
            "kty": "EC",
            "crv": "P-384",
            "x": _b64url(pub.public_numbers().x, 48),
            "y": _b64url(pub.public_numbers().y, 48),
        },
        "ecRaw": base64.b64encode(raw_point).decode(),
        "rsaSig": base64.b64encode(rsa_sig).decode(),
        "ecSig": base64.b64encode(ec_sig).decode(),
        "data": base64.b64encode(data).decode(),
    }
    code = (
        B64
        + """
      const rsaAlg = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-384" };
      const ecAlg = { name: "ECDSA", namedCurve: "P-384" };
      const rsa = await crypto.subtle.importKey("jwk", input.rsaJwk, rsaAlg, false, ["verify"]);
      const ecJ = await crypto.subtle.importKey("jwk", input.ecJwk, ecAlg, false, ["verify"]);
      const raw = unb64(input.ecRaw);
      const ecR = await crypto.subtle.importKey("raw", raw, ecAlg, false, ["verify"]);
      const data = unb64(input.data);
      const ecdsa = { name: "ECDSA", hash: "SHA-384" };
      return [await crypto.subtle.verify("RSASSA-PKCS1-v1_5", rsa, unb64(input.rsaSig), data),
              await crypto.subtle.verify(ecdsa, ecJ, unb64(input.ecSig), data),
              await crypto.subtle.verify(ecdsa, ecR, unb64(input.ecSig), data),
              await crypto.subtle.verify(ecdsa, ecR, unb64(input.ecSig), new Uint8Array(3))];
    """
    )
    assert run(code, kind, input=given) == [True, True, True, False]


def test_bad_keys_and_algorithms_get_dom_exceptions(run):
    code = """
      const out = [];
      const tries = [
        () => crypto.subtle.digest("MD5", new Uint8Array(1)),
        () => crypto.subtle.importKey("spki", new Uint8Array([1, 2, 3]),
          { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]),
        () => crypto.subtle.importKey("raw", new Uint8Array(4), { name: "HMAC", hash: "SHA-256" },
          false, ["verify"]).then((k) => crypto.subtle.sign("HMAC", k, new Uint8Array(1))),
        () => crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"]),
      ];
      for (const t of tries) {
        try { await t(); out.push(null); }
        catch (e) { out.push([e.name, e instanceof DOMException]); }
      }
      return out;
    """
    assert run(code) == [
        ["NotSupportedError", True],
        ["DataError", True],
        ["InvalidAccessError", True],
        ["NotSupportedError", True],
    ]


@pytest.mark.parametrize("kind", ["query", "mutation"])
def test_queries_and_mutations_refuse_randomized_signatures(run, kind):
    keys = {"priv": _der_b64(EC_KEY, True)}
    code = (
        B64
        + """
      const alg = { name: "ECDSA", namedCurve: "P-256" };
      const priv = await crypto.subtle.importKey("pkcs8", unb64(input.priv), alg, false, ["sign"]);
      await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, priv, new Uint8Array(1));
    """
    )
    refusal = (
        "Uncaught Error: Can't use cryptographic randomness in queries and mutations. Please "
        "consider using an action. See https://docs.convex.dev/functions/actions for more details."
    )
    assert run.error(code, kind, input=keys) == refusal
    assert run.error("setTimeout(() => {}, 1);", kind).startswith(
        "Uncaught Error: Can't use setTimeout in queries and mutations."
    )


def test_random_values_in_actions_are_fresh_and_in_queries_follow_the_seed(run):
    code = """
      const a = crypto.getRandomValues(new Uint8Array(32));
      const b = crypto.getRandomValues(new Uint32Array(4));
      let errors = [];
      for (const f of [() => crypto.getRandomValues(new Float64Array(2)),
                       () => crypto.getRandomValues(new Uint8Array(65537))]) {
        try { f(); } catch (e) { errors.push(`${e.name}: ${e.message}`); }
      }
      return [Array.from(a), Array.from(b), crypto.randomUUID(), errors];
    """
    from web_handler import web_handler

    key_one, key_two = bytes(range(32)), bytes(range(1, 33))
    one = run(code, handler=web_handler("action"), crypto_key=key_one)
    again = run(code, handler=web_handler("action"), crypto_key=key_one)
    other = run(code, handler=web_handler("action"), crypto_key=key_two)
    assert one == again and one[0] != other[0] and one[2] != other[2]
    assert one[3] == [
        "TypeMismatchError: The provided ArrayBufferView is not an integer array type",
        "TypeError: Byte length (65537) exceeds the number of bytes of entropy available via "
        "this API (65536)",
    ]
    # ChaCha20 keyed by 0..31 with a zero counter and nonce (RFC 8439's block function).
    import struct

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    stream = Cipher(algorithms.ChaCha20(key_one, struct.pack("<4I", 0, 0, 0, 0)), None)
    expected = stream.encryptor().update(bytes(48))
    assert bytes(one[0]) == expected[:32]
    assert list(struct.unpack("<4I", expected[32:48])) == one[1]
    query = run(code, "query", seed=5)
    assert query == run(code, "query", seed=5) and query != run(code, "query", seed=6)
