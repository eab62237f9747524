"""Marketplace ids and regions by country code, from python-amazon-sp-api's ``Marketplaces`` table.

https://developer-docs.amazon.com/sp-api/docs/marketplace-ids
"""

from __future__ import annotations

from sp_api.base import Marketplaces

REGIONS = {"us-east-1": "na", "eu-west-1": "eu", "us-west-2": "fe"}
# Seller Central says "UK"; ISO 3166 says "GB": accept both.
ALIASES = {"GB": "UK"}
REGION_ANCHOR = {"na": Marketplaces.US, "eu": Marketplaces.DE, "fe": Marketplaces.JP}


def region_of(country: str) -> str:
    """Return the SP-API region (na, eu, fe) that serves a marketplace country."""
    return REGIONS[_member(country).region]


def marketplace_id(country: str) -> str:
    """Return the marketplace id of a country code (US → ATVPDKIKX0DER); ValueError when unknown."""
    return _member(country).marketplace_id


def country_of(marketplace: str) -> str | None:
    """Return the country code of a marketplace id, or None when unknown."""
    for member in Marketplaces:
        if member.marketplace_id == marketplace:
            return "GB" if member.name == "UK" else member.name
    return None


def default_endpoint(region: str) -> str:
    """Return Amazon's production SP-API endpoint of a region."""
    return REGION_ANCHOR[region].endpoint


def resolve(countries: list[str], region: str) -> list[str]:
    """Turn country codes into marketplace ids, checking each belongs to ``region``."""
    ids = []
    for raw in countries:
        code = raw.strip().upper()
        if not code:
            continue
        if region_of(code) != region:
            raise ValueError(f"marketplace {code} is not in region {region} (it is in {region_of(code)})")
        ids.append(marketplace_id(code))
    if not ids:
        raise ValueError("at least one marketplace country code is needed, e.g. US,CA")
    return ids


def _member(country: str) -> Marketplaces:
    code = ALIASES.get(country.upper(), country.upper())
    try:
        return Marketplaces[code]
    except KeyError:
        raise ValueError(f"unknown Amazon marketplace country code: {country}") from None
