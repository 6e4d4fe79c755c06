"""Certificate issuer: EU-DCC-style payloads, CWT, COSE_Sign1, base45 and ``HC1:`` QR codes.

So far the wire-format helpers (:mod:`certs.wire`), shared with the verifier; the issuer itself
arrives with the certificate-service issue.
"""

__all__: list[str] = []
