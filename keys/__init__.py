"""Key material: CSCA and document-signer certificates, key stores, rotation, trust-bundle signing.

So far only the one definition of a document signer's KID (:func:`kid_of`); the key stores, X.509
creation and rotation arrive with the certificate-service issue.
"""

from keys.kid import KID_LENGTH, kid_of

__all__ = ["KID_LENGTH", "kid_of"]
