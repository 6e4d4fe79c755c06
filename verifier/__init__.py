"""Offline verifier for ``HC1:`` certificates: decode, check pipeline, trust store, rules.

Not built yet: see the offline-verifier issue. This package holds no code until then.
"""

__all__: list[str] = []
