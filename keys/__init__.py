"""Key material: CSCA and document-signer certificates, key stores, rotation, trust-bundle signing.

Not built yet: see the certificate-service issue. This package holds no code until then.
"""

__all__: list[str] = []
