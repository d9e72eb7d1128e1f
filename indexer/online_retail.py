"""The UCI Online Retail reader, under the name earlier code and notes import.

The reader lives in :mod:`indexer.formats.retail`.
"""

from indexer.formats.retail import (
    NON_PRODUCT_CODES,
    REQUIRED_COLUMNS,
    RetailLoad,
    is_product_code,
    load_online_retail,
    read_rows,
    shop_title,
    write_sample,
)

__all__ = [
    "NON_PRODUCT_CODES",
    "REQUIRED_COLUMNS",
    "RetailLoad",
    "is_product_code",
    "load_online_retail",
    "read_rows",
    "shop_title",
    "write_sample",
]
