"""The pages' text in Japanese and English (one table; the templates and the scripts share it)."""

from __future__ import annotations

LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"

#: key → (Japanese, English)
_TEXT: dict[str, tuple[str, str]] = {
    "site.title": ("ワクチン接種記録システム", "Vaccination record system"),
    "site.skip": ("本文へ移動", "Skip to content"),
    "lang.switch": ("English", "日本語"),
    "nav.home": ("トップ", "Home"),
    "nav.resident": ("接種証明書(住民)", "Certificates (residents)"),
    "nav.municipality": ("自治体コンソール", "Municipality console"),
    "home.intro": (
        "接種記録の確認と接種証明書の取得、自治体の記録管理を行います。",
        "See your vaccination records and get a certificate; municipalities keep records right.",
    ),
    "home.resident": (
        "マイナンバーカード(開発用)でサインインし、接種証明書を取得します。",
        "Sign in with your (development) My Number card and get a certificate.",
    ),
    "home.municipality": (
        "自治体職員: 住民・接種記録の取込み、確認キュー、訂正、統計。",
        "Municipality staff: imports, review queue, corrections, statistics.",
    ),
    "home.checker": (
        "確認者は自分の端末で vrs-verify serve を起動して証明書を確認します。",
        "Checkers run vrs-verify serve on their own device to check certificates.",
    ),
    "resident.title": ("接種証明書", "Vaccination certificate"),
    "resident.signin": ("サインイン", "Sign in"),
    "resident.card": ("カードファイル(開発用)", "Card file (development)"),
    "resident.card.help": (
        "vrs dev make-card で作ったファイルを選びます。鍵はこの端末から送信されません。",
        "Pick the file made by vrs dev make-card. Its key never leaves this device.",
    ),
    "resident.signin.button": ("カードでサインイン", "Sign in with the card"),
    "resident.signout": ("サインアウト", "Sign out"),
    "resident.signedin": ("サインイン済み", "Signed in"),
    "resident.me": ("ご本人の情報", "About you"),
    "resident.name": ("氏名", "Name"),
    "resident.kana": ("フリガナ", "Kana"),
    "resident.birth": ("生年月日", "Date of birth"),
    "resident.doses": ("接種記録", "Doses"),
    "resident.dose": ("回数", "Dose"),
    "resident.date": ("接種日", "Date"),
    "resident.product": ("ワクチン", "Vaccine"),
    "resident.lot": ("ロット", "Lot"),
    "resident.status": ("状態", "Status"),
    "resident.nodoses": ("接種記録はありません。", "No doses are recorded."),
    "resident.flagged": ("確認中", "Being checked"),
    "resident.get": ("証明書を取得", "Get a certificate"),
    "resident.kind": ("種類", "Kind"),
    "resident.domestic": ("日本国内用", "Domestic"),
    "resident.overseas": ("海外用(パスポート表記)", "Overseas (passport spelling)"),
    "resident.which": ("対象の接種", "Which dose"),
    "resident.latest": ("最新の接種", "Latest dose"),
    "resident.passport.family": ("姓(パスポート表記)", "Family name (as in the passport)"),
    "resident.passport.given": ("名(パスポート表記)", "Given name (as in the passport)"),
    "resident.suggestion": (
        "フリガナからのヘボン式の候補です。パスポートと同じ綴りか確認してください:",
        "Suggested from the kana by passport Hepburn; check it matches your passport:",
    ),
    "resident.issue": ("発行する", "Issue"),
    "resident.certificate": ("あなたの接種証明書", "Your certificate"),
    "resident.qr.alt": (
        "接種証明書のQRコード(第{dose}回接種、{uvci})",
        "QR code of your vaccination certificate (dose {dose}, {uvci})",
    ),
    "resident.png": ("QR画像(PNG)をダウンロード", "Download the QR image (PNG)"),
    "resident.pdf": ("証明書(PDF)をダウンロード", "Download the certificate (PDF)"),
    "resident.expires": ("有効期限", "Expires"),
    "resident.certificates": ("発行済みの証明書", "Certificates issued"),
    "resident.revoked": ("失効(記録が訂正されました)", "Revoked (a record was corrected)"),
    "resident.active": ("有効", "Active"),
    "resident.show": ("表示", "Show"),
    "resident.protected": (
        "この証明書は自治体の窓口で発行します。",
        "Your certificate is issued at the municipality window.",
    ),
    "muni.title": ("自治体コンソール", "Municipality console"),
    "muni.code": ("自治体コード", "Municipality code"),
    "muni.token": ("アクセストークン", "Access token"),
    "muni.signin": ("サインイン", "Sign in"),
    "muni.import": ("CSV取込み", "CSV import"),
    "muni.import.kind": ("取込む内容", "What to import"),
    "muni.import.residents": ("住民", "Residents"),
    "muni.import.doses": ("接種記録(紙の予診票)", "Dose records (paper forms)"),
    "muni.import.file": ("CSVファイル", "CSV file"),
    "muni.import.button": ("取込む", "Upload"),
    "muni.import.busy": ("取込み中…", "Uploading…"),
    "muni.import.ok": ("取込みました", "Imported"),
    "muni.import.failed": (
        "取込めませんでした(何も書き込まれていません)",
        "Not imported (nothing was written)",
    ),
    "muni.line": ("行", "Line"),
    "muni.column": ("列", "Column"),
    "muni.problem": ("内容", "Problem"),
    "muni.review": ("確認キュー", "Review queue"),
    "muni.filter.rule": ("ルール", "Rule"),
    "muni.filter.site": ("接種施設コード", "Site code"),
    "muni.filter.from": ("接種日(から)", "Date from"),
    "muni.filter.to": ("接種日(まで)", "Date to"),
    "muni.filter.severity": ("種別", "Kind"),
    "muni.filter.any": ("すべて", "Any"),
    "muni.filter.button": ("絞り込む", "Filter"),
    "muni.review.empty": ("確認が必要な記録はありません。", "Nothing to review."),
    "muni.review.total": ("件", "items"),
    "muni.coupon": ("接種券番号", "Coupon"),
    "muni.record": ("記録", "Record"),
    "muni.actions": ("操作", "Actions"),
    "muni.history": ("履歴", "History"),
    "muni.correct": ("訂正", "Correct"),
    "muni.verify": ("確認済みにする", "Verify (lock)"),
    "muni.void": ("取消", "Void"),
    "muni.field": ("項目", "Field"),
    "muni.value": ("新しい値", "New value"),
    "muni.reason": ("理由", "Reason"),
    "muni.apply": ("実行", "Apply"),
    "muni.cancel": ("閉じる", "Close"),
    "muni.done": ("完了しました", "Done"),
    "muni.revoked": ("失効した証明書", "certificates revoked"),
    "muni.coupons": ("接種券", "Coupons"),
    "muni.coupons.issue": (
        "接種券番号の無い住民に番号を発行",
        "Issue coupon numbers to residents who have none",
    ),
    "muni.coupons.dose": ("印刷する接種券の回数", "Dose the tickets are for"),
    "muni.coupons.print": ("接種券を印刷(PDF)", "Print coupon sheets (PDF)"),
    "muni.coupons.ready": ("接種券のPDFをダウンロード", "Download the coupon sheets (PDF)"),
    "muni.charts": ("統計", "Statistics"),
    "muni.chart.day": ("日別の接種回数", "Doses per day"),
    "muni.chart.product": ("ワクチン別の接種回数", "Doses per product"),
    "muni.chart.suppressed": (
        "10未満のセルは公開統計のため非表示です。",
        "Cells below 10 are suppressed in the open statistics.",
    ),
    "muni.chart.empty": ("表示できるデータはありません。", "No data to show."),
    "error.prefix": ("エラー", "Error"),
    "error.network": ("サーバーに接続できません", "Cannot reach the server"),
    "error.card": ("カードファイルを読めません", "The card file cannot be read"),
    "verdict.valid": ("有効", "VALID"),
    "verdict.invalid": ("無効", "INVALID"),
    "verdict.error": ("判定できません", "CANNOT DECIDE"),
}


def messages(language: str) -> dict[str, str]:
    """Every message in ``language`` (``ja`` or ``en``)."""
    index = LANGUAGES.index(language)
    return {key: pair[index] for key, pair in _TEXT.items()}


def pick_language(query: str | None, accept_language: str | None) -> str:
    """``?lang=`` wins; else the first of ja/en in Accept-Language; else Japanese."""
    if query in LANGUAGES:
        return query
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return DEFAULT_LANGUAGE
