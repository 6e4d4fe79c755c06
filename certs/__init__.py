"""Certificate issuer: EU-DCC-style payloads, CWT, COSE_Sign1, base45 and ``HC1:`` QR codes.

Not built yet: see the certificate-service issue. This package holds no code until then.
"""

__all__: list[str] = []
