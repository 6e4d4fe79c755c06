"""Site side: reading coupons and vaccine lot codes from camera frames, and delivering the
dose records to the record service through a durable outbox.

- :func:`read_coupon` reads one frame or photo: the coupon's QR code with zxing-cpp (pyzbar
  where libzbar is installed, as a fallback), else the 18-digit OCR-B line with our own
  recogniser; check digits are validated and unclear reads refused.
- :class:`CouponConsensus` accepts OCR reads only when consecutive frames agree.
- :func:`read_lot` reads the GS1 barcode on a vial or carton (GTIN, expiry, lot, serial).

- :class:`Outbox` keeps every record (SQLite, WAL, ``synchronous=FULL``) before any network
  call; :class:`Sender` posts it with its client record id (backoff with jitter, crash
  recovery), so it is stored exactly once; :class:`ApiClient` also fetches the masked
  coupon preview. :func:`watch` is the camera loop with staff guidance.

Exceptions: :class:`ScanError` (``code``) → :class:`ImageError`, :class:`GtinTableError`,
:class:`ConsensusError`, :class:`CameraError`, :class:`OutboxError` (→
:class:`InvalidRecord`, :class:`DeliveryError`).
"""

from scanner.camera import CameraError, CameraEvent, Guidance, frames_from, watch
from scanner.client import ApiClient, CouponPreview, PreviewOutcome, PreviewResult
from scanner.coupon import CouponConsensus, CouponRead, parse_coupon_line, read_coupon
from scanner.errors import ConsensusError, GtinTableError, ImageError, ScanError
from scanner.lot import Gs1Error, GtinTable, LotRead, lot_from_text, parse_gs1, read_lot
from scanner.outbox import (
    Confirmation,
    DeliveryError,
    InvalidRecord,
    Outbox,
    OutboxError,
    OutboxRecord,
    RecordDraft,
    RecordState,
    default_outbox_path,
)
from scanner.sender import Backoff, Sender, SendReport

__all__ = [
    "ApiClient",
    "Backoff",
    "CameraError",
    "CameraEvent",
    "Confirmation",
    "ConsensusError",
    "CouponConsensus",
    "CouponPreview",
    "CouponRead",
    "DeliveryError",
    "Gs1Error",
    "GtinTable",
    "GtinTableError",
    "Guidance",
    "ImageError",
    "InvalidRecord",
    "LotRead",
    "Outbox",
    "OutboxError",
    "OutboxRecord",
    "PreviewOutcome",
    "PreviewResult",
    "RecordDraft",
    "RecordState",
    "ScanError",
    "SendReport",
    "Sender",
    "default_outbox_path",
    "frames_from",
    "lot_from_text",
    "parse_coupon_line",
    "parse_gs1",
    "read_coupon",
    "read_lot",
    "watch",
]
