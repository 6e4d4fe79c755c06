"""Site side: reading coupons and vaccine lot codes from camera frames, and the durable outbox.

Not built yet: see the site-scanner issue. This package holds no code until then.
"""

__all__: list[str] = []
