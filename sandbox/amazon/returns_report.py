"""Returns reports: ``GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA`` (FBA) and
``GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE`` (seller-fulfilled), tab-separated.

Headers as real files carry them: the FBA header is the one a public MWS client checks
(``ReportFbaReturns::EXPECTED_HEADER`` in an open-source MwsComplete library, also shown in a sample
``2025-06-05T15:31:40+00:00 ... CUSTOMER_DAMAGED NOT_COMPATIBLE ...``); the seller-fulfilled header and
its ``10-Jul-2025`` dates come from a published SP-API walkthrough's downloaded document. The mapping of
the sandbox's return reasons to Amazon's MFN reason codes is an approximation.
"""

from __future__ import annotations

from .marketplaces import MARKETPLACES, PYTHON_CODECS
from .seed import Order, Return

FBA_HEADER = ["return-date", "order-id", "sku", "asin", "fnsku", "product-name", "quantity",
              "fulfillment-center-id", "detailed-disposition", "reason", "status", "license-plate-number",
              "customer-comments"]
MFN_HEADER = ["Order ID", "Order date", "Return request date", "Return request status", "Amazon RMA ID",
              "Merchant RMA ID", "Label type", "Label cost", "Currency code", "Return carrier", "Tracking ID",
              "Label to be paid by", "A-to-Z Claim", "Is prime", "ASIN", "Merchant SKU", "Item Name",
              "Return quantity", "Return Reason", "In policy", "Return type", "Resolution", "Invoice number",
              "Return delivery date", "Order Amount", "Order quantity", "SafeT Action reason", "SafeT claim id",
              "SafeT claim state", "SafeT claim creation time", "SafeT claim reimbursement amount",
              "Refunded Amount"]
MFN_REASONS = {"DEFECTIVE": "CR-DEFECTIVE", "DAMAGED_BY_CARRIER": "CR-DAMAGED_BY_CARRIER",
               "NOT_AS_DESCRIBED": "AMZ-PG-BAD-DESC", "UNWANTED_ITEM": "CR-UNWANTED_ITEM",
               "SWITCHEROO": "CR-SWITCHEROO"}
DISPOSITIONS = {"DEFECTIVE": "DEFECTIVE", "DAMAGED_BY_CARRIER": "CARRIER_DAMAGED", "SWITCHEROO": "DEFECTIVE"}


def _encode(marketplace_id: str, lines: list[str]) -> tuple[bytes, str]:
    charset = MARKETPLACES[marketplace_id].report_charset
    text = "\r\n".join(lines) + "\r\n"
    return text.encode(PYTHON_CODECS[charset], errors="replace"), f"text/plain; charset={charset}"


def render_fba(marketplace_id: str, rows: list[tuple[Return, Order]]) -> tuple[bytes, str]:
    """Render FBA customer returns (one line per returned unit group)."""
    lines = ["\t".join(FBA_HEADER)]
    for ret, order in sorted(rows, key=lambda pair: (pair[0].return_date, pair[0].order_id)):
        item = next(i for i in order.items if i.order_item_id == ret.order_item_id)
        lines.append("\t".join([
            ret.return_date.strftime("%Y-%m-%dT%H:%M:%S+00:00"), ret.order_id, item.sku, item.asin, item.asin,
            item.title, str(ret.quantity), "LEX1", DISPOSITIONS.get(ret.reason, "SELLABLE"), ret.reason,
            "Unit returned to inventory", "LPN" + ret.order_id.replace("-", "")[-9:], ""]))
    return _encode(marketplace_id, lines)


def render_mfn(marketplace_id: str, rows: list[tuple[Return, Order]]) -> tuple[bytes, str]:
    """Render seller-fulfilled returns by return request date."""
    lines = ["\t".join(MFN_HEADER)]
    for ret, order in sorted(rows, key=lambda pair: (pair[0].return_date, pair[0].order_id)):
        item = next(i for i in order.items if i.order_item_id == ret.order_item_id)
        refunded = str(ret.refund_amount) if ret.refunded_at else ""
        lines.append("\t".join([
            ret.order_id, order.purchase_date.strftime("%d-%b-%Y"), ret.return_date.strftime("%d-%b-%Y"),
            "Approved", "D" + ret.order_id.replace("-", "")[-10:] + "RMA", " ", "AmazonPrePaidLabel", "4.14",
            order.currency, "USPS", "9202" + ret.order_id.replace("-", ""), "Seller", "N",
            "Y" if order.is_prime else "N", item.asin, item.sku, item.title, str(ret.quantity),
            MFN_REASONS.get(ret.reason, "CR-OTHER"), "Y", "C-Returns", "StandardRefund", " ", " ",
            str(item.unit_price * item.quantity), str(item.quantity), "", "", "", "", "", refunded]))
    return _encode(marketplace_id, lines)
