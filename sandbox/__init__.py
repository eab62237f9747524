"""Local stand-ins for Shopify, Amazon SP-API, Judge.me and SMTP, served over real loopback HTTP/SMTP."""
