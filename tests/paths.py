"""Where the tests find the official specs: ../shared beside the clone (CI puts it there)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AFTERCARE_SHARED_DIR", ROOT.parent / "shared"))
SHOPIFY_SCHEMA = SHARED / "specs" / "shopify" / "admin_schema_2025-01.json.gz"
AMAZON_SPECS = SHARED / "specs" / "amazon"
