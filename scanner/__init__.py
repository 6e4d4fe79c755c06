"""Site side: reading coupons and vaccine lot codes from camera frames.

- :func:`read_coupon` reads one frame or photo: the coupon's QR code with zxing-cpp (pyzbar
  where libzbar is installed, as a fallback), else the 18-digit OCR-B line with our own
  recogniser; check digits are validated and unclear reads refused.
- :class:`CouponConsensus` accepts OCR reads only when consecutive frames agree.
- :func:`read_lot` reads the GS1 barcode on a vial or carton (GTIN, expiry, lot, serial).

Exceptions: :class:`ScanError` (``code``) → :class:`ImageError`, :class:`GtinTableError`,
:class:`ConsensusError`.
"""

from scanner.coupon import CouponConsensus, CouponRead, parse_coupon_line, read_coupon
from scanner.errors import ConsensusError, GtinTableError, ImageError, ScanError
from scanner.lot import Gs1Error, GtinTable, LotRead, parse_gs1, read_lot

__all__ = [
    "ConsensusError",
    "CouponConsensus",
    "CouponRead",
    "Gs1Error",
    "GtinTable",
    "GtinTableError",
    "ImageError",
    "LotRead",
    "ScanError",
    "parse_coupon_line",
    "parse_gs1",
    "read_coupon",
    "read_lot",
]
