"""Online Retail (UCI ML Repository, id 352): a UK online gift retailer's invoice lines, 2010-12-01 .. 2011-12-09.

Cite: Chen, D., Sain, S. L., Guo, K. (2012). "Data mining for the online retail industry: A case study of RFM
model-based customer segmentation using data mining." Journal of Database Marketing & Customer Strategy
Management 19(3), 197-208; and the UCI ML Repository, "Online Retail", doi:10.24432/C5BW33.
File: ``<data_dir>/online-retail-uci/online_retail.parquet`` (541,909 lines; see that folder's README).

Mapping to the contract (:mod:`ecomlab.data.bundle`):

* ``interactions`` -- one row per purchase line: CustomerID -> user_id (int64), StockCode -> item_id,
  InvoiceDate -> timestamp, Quantity -> weight. InvoiceDate is the shop's local (UK) wall-clock time without a
  zone; it is read as UTC. Lines of one customer for one product at the same InvoiceDate (repeated lines of an
  invoice) are merged with their quantities summed, since the contract keys interactions by
  ``(user, item, timestamp)`` (count in ``meta["policy"]["merged_lines"]``).
* ``item_text`` -- per stock code the most frequent Description among its kept lines (ties: alphabetically
  first), whitespace runs collapsed; ``""`` for the few codes whose kept lines have no description.
* ``sales`` -- a daily panel, ``y`` = quantity sold, with covariates ``revenue`` (sum of Quantity x UnitPrice,
  GBP, rounded to pence) and ``trading_day`` (1 if the shop recorded any kept line that day). Series:
  ``unique_id="total"`` (all kept lines) and/or one per product (its stock code) for the ``top_products``
  codes with the largest total quantity (ties: code order; ``None`` = every product). Every series covers
  every calendar day from the first to the last trading day of the data (``freq="D"``, 374 days); days without
  sales -- Saturdays, the holiday break and days a product did not sell -- are 0, not missing, so the index is
  regular for season-7 models.

Policy, applied in this order; each line is counted under the first rule it fails, and
``meta["policy"]`` records the counts (``lines_total`` = sum of every ``dropped_*`` + ``interaction_lines``):

==================================  ===========================  ==================================================
rule                                option                       effect
==================================  ===========================  ==================================================
invoice number starts with "C"      ``cancellations``            ``"drop"`` (default) and ``"reverse"``: dropped
(cancellation)                                                   from interactions and sales; ``"error"``: refuse
                                                                 the file
Quantity < ``min_quantity``         ``min_quantity`` (>= 1)      dropped everywhere (non-positive quantities are
                                                                 stock adjustments, not sales)
purchase reversed by a              ``cancellations="reverse"``  dropped everywhere (``dropped_reversed``): the
cancellation                                                     latest earlier line of the same customer, stock
                                                                 code and quantity as a cancellation line, each
                                                                 line matched at most once
StockCode in ``drop_stock_codes``   ``drop_stock_codes``         dropped everywhere: postage, fees, manual
(case-insensitive)                  (default                     adjustments and bad-debt entries are not products
                                    ``NON_PRODUCT_CODES``)
-- lines left: ``sales_lines``      --                           the sales panel sums these
CustomerID missing                  ``missing_customer``         ``"drop"`` (default): dropped from interactions
                                                                 only (sales need no customer); ``"error"``: refuse
-- lines left: ``interaction_lines``
==================================  ===========================  ==================================================

With ``uppercase_codes=True`` (default) stock codes are upper-cased first: the file has 112 codes that differ
from another code only by case (``15056bl`` / ``15056BL``, same description); the count of merged codes is
``meta["policy"]["codes_merged_by_case"]``. Unlike the folder's ``daily_sales.csv`` (which keeps negative
quantities and service codes), the panel here holds only kept lines.

Why ``"reverse"`` exists: dropping cancellation lines alone keeps the purchases they cancel. In this file that
keeps, among others, 80,995 units of 23843 on 2011-12-09 (cancelled 12 minutes later) and 74,215 units of
23166 on 2011-01-18 (cancelled 16 minutes later), which then top the product ranking and spike the ``total``
series. ``"reverse"`` removes a purchase only on an exact match; cancellations of purchases before the data
starts, or of part of a line, remove nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ecomlab.data.bundle import DatasetBundle, DataValidationError, build_bundle, require_columns
from ecomlab.data.io import read_table

__all__ = ["OnlineRetailUCI", "NON_PRODUCT_CODES", "PANELS"]

#: service codes of the file that are not products (postage, carriage, fees, manual entries, bad debt, samples)
NON_PRODUCT_CODES = ("POST", "DOT", "C2", "M", "BANK CHARGES", "AMAZONFEE", "PADS", "B", "S", "D", "CRUK")
PANELS = ("per_product_and_total", "per_product", "total")
_COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID")
_FILE = "online_retail.parquet"


def _choice(owner: str, key: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{owner}.{key}={value!r}; allowed values {list(allowed)}")
    return value


def _reversed_purchases(customer: pd.Series, codes: pd.Series, quantity: pd.Series, when: pd.Series,
                        cancelled: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Mask of ``candidate`` lines that a cancellation line reverses exactly (see the policy table)."""
    known = customer.notna().to_numpy()
    events = pd.DataFrame({"customer": customer, "code": codes, "q": quantity.abs(), "when": when,
                           "cancel": cancelled})[(cancelled | candidate) & known]
    key = pd.MultiIndex.from_frame(events[["customer", "code", "q"]])
    is_cancel = events["cancel"].to_numpy()
    events = events[key.isin(key[is_cancel]) & key.isin(key[~is_cancel])]  # keys with both kinds of line
    # at one instant a purchase comes before its cancellation; within a key the latest open purchase is undone
    events = events.sort_values(["customer", "code", "q", "when", "cancel"], kind="stable")
    out = np.zeros(len(customer), dtype=bool)
    rows, cancels = events.index.to_numpy(), events["cancel"].to_numpy()
    group = pd.MultiIndex.from_frame(events[["customer", "code", "q"]]).factorize()[0]
    open_rows: list[int] = []
    for i in range(len(rows)):
        if i and group[i] != group[i - 1]:
            open_rows = []
        if not cancels[i]:
            open_rows.append(int(rows[i]))
        elif open_rows:
            out[open_rows.pop()] = True
    return out


class OnlineRetailUCI:
    """UCI Online Retail as interactions, product text and a daily sales panel; see the module docstring."""

    def __init__(self, data_dir: str, folder: str = "online-retail-uci",
                 cancellations: Literal["drop", "reverse", "error"] = "drop", min_quantity: int = 1,
                 missing_customer: Literal["drop", "error"] = "drop",
                 panel: Literal["per_product_and_total", "per_product", "total"] = "per_product_and_total",
                 top_products: int | None = 50, drop_stock_codes: list[str] | None = None,
                 uppercase_codes: bool = True) -> None:
        owner = "OnlineRetailUCI"
        self.cancellations = _choice(owner, "cancellations", cancellations, ("drop", "reverse", "error"))
        self.missing_customer = _choice(owner, "missing_customer", missing_customer, ("drop", "error"))
        self.panel = _choice(owner, "panel", panel, PANELS)
        if isinstance(min_quantity, bool) or int(min_quantity) != min_quantity or min_quantity < 1:
            raise ValueError(f"{owner}.min_quantity={min_quantity!r}; expected an integer >= 1")
        if top_products is not None and (isinstance(top_products, bool) or int(top_products) < 1):
            raise ValueError(f"{owner}.top_products={top_products!r}; expected an integer >= 1 or null (all)")
        self.data_dir, self.folder = str(data_dir), folder
        self.min_quantity = int(min_quantity)
        self.top_products = None if top_products is None else int(top_products)
        codes = NON_PRODUCT_CODES if drop_stock_codes is None else drop_stock_codes
        self.drop_stock_codes = sorted({str(c).upper() for c in codes})
        self.uppercase_codes = bool(uppercase_codes)

    @property
    def path(self) -> Path:
        return Path(self.data_dir) / self.folder / _FILE

    def cache_key(self) -> dict[str, Any]:
        return {"data_dir": str(Path(self.data_dir).resolve()), "folder": self.folder,
                "cancellations": self.cancellations, "min_quantity": self.min_quantity,
                "missing_customer": self.missing_customer, "panel": self.panel,
                "top_products": self.top_products, "drop_stock_codes": self.drop_stock_codes,
                "uppercase_codes": self.uppercase_codes, "files": [str(self.path.resolve())]}

    def load(self) -> DatasetBundle:
        path = self.path
        raw = read_table(path, f"set paths.data_dir to the folder holding {self.folder}/ (it needs {_FILE})")
        where = str(path)
        require_columns(raw, _COLUMNS, where)
        lines = raw.reset_index(drop=True)
        n_total = len(lines)
        invoice = lines["InvoiceNo"].astype(str)
        codes = lines["StockCode"].astype(str).str.strip()
        n_codes_raw = codes.nunique()
        if self.uppercase_codes:
            codes = codes.str.upper()
        quantity = pd.to_numeric(lines["Quantity"], errors="coerce")
        price = pd.to_numeric(lines["UnitPrice"], errors="coerce")
        when = pd.to_datetime(lines["InvoiceDate"], errors="coerce")
        for column, values in (("Quantity", quantity), ("UnitPrice", price), ("InvoiceDate", when)):
            bad = values.isna().to_numpy()
            if bad.any():
                raise DataValidationError(f"{where}: column {column!r} has {int(bad.sum())} missing or unparseable "
                                          f"value(s); first rows {np.flatnonzero(bad)[:5].tolist()} (0-based)")

        cancelled = invoice.str.startswith("C").to_numpy()
        if cancelled.any() and self.cancellations == "error":
            raise DataValidationError(
                f"{where}: {int(cancelled.sum())} cancellation line(s) (InvoiceNo starting with 'C'); first rows "
                f"{np.flatnonzero(cancelled)[:5].tolist()} (0-based); set cancellations=drop to skip them")
        low = ~cancelled & (quantity < self.min_quantity).to_numpy()
        reversed_ = np.zeros(n_total, dtype=bool)
        if self.cancellations == "reverse":
            reversed_ = _reversed_purchases(lines["CustomerID"], codes, quantity, when, cancelled, ~cancelled & ~low)
        service = ~cancelled & ~low & ~reversed_ & codes.str.upper().isin(self.drop_stock_codes).to_numpy()
        sold = ~(cancelled | low | reversed_ | service)
        no_customer = sold & lines["CustomerID"].isna().to_numpy()
        if no_customer.any() and self.missing_customer == "error":
            raise DataValidationError(
                f"{where}: {int(no_customer.sum())} kept line(s) without CustomerID; first rows "
                f"{np.flatnonzero(no_customer)[:5].tolist()} (0-based); set missing_customer=drop to leave them "
                "out of the interactions")
        bought = sold & ~no_customer

        kept = pd.DataFrame({"code": codes[sold].to_numpy(), "when": when[sold].to_numpy(),
                             "quantity": quantity[sold].to_numpy(np.float64),
                             "revenue": (quantity[sold] * price[sold]).to_numpy(np.float64),
                             "description": lines["Description"][sold].to_numpy(),
                             "customer": lines["CustomerID"][sold].to_numpy(), "bought": bought[sold]})
        interactions, merged = self._interactions(kept[kept["bought"]])
        item_text, n_no_text = self._item_text(kept, interactions["item_id"].unique())
        sales, panel_meta = self._sales(kept)

        policy = {
            "lines_total": n_total, "dropped_cancelled": int(cancelled.sum()),
            "dropped_quantity_below_min": int(low.sum()), "dropped_reversed": int(reversed_.sum()),
            "dropped_non_product_codes": int(service.sum()),
            "sales_lines": int(sold.sum()), "dropped_missing_customer": int(no_customer.sum()),
            "interaction_lines": int(bought.sum()), "merged_lines": merged,
            "codes_merged_by_case": int(n_codes_raw - codes.nunique()),
            "items_without_description": n_no_text,
        }
        meta = {"policy": policy, "options": {k: v for k, v in self.cache_key().items() if k != "files"},
                "timestamps": "InvoiceDate (UK local time) read as UTC", "freq": "D", **panel_meta}
        return build_bundle("online_retail_uci", interactions, item_text=item_text, sales=sales,
                            files={"interactions": where, "item_text": where, "sales": where}, meta=meta)

    @staticmethod
    def _interactions(bought: pd.DataFrame) -> tuple[pd.DataFrame, int]:
        frame = pd.DataFrame({"user_id": bought["customer"].astype(np.int64).to_numpy(),
                              "item_id": bought["code"].to_numpy(),
                              "timestamp": bought["when"].to_numpy(), "weight": bought["quantity"].to_numpy()})
        merged = frame.groupby(["user_id", "item_id", "timestamp"], sort=False, as_index=False)["weight"].sum()
        merged = merged.sort_values(["timestamp", "user_id", "item_id"], kind="stable").reset_index(drop=True)
        return merged, len(frame) - len(merged)

    @staticmethod
    def _item_text(kept: pd.DataFrame, items: np.ndarray) -> tuple[pd.DataFrame, int]:
        described = kept[kept["code"].isin(items)].dropna(subset=["description"])
        # count raw (code, description) pairs first: normalising ~5k distinct strings beats ~500k lines
        pairs = described.groupby(["code", "description"]).size().rename("n").reset_index()
        pairs["text"] = pairs["description"].astype(str).str.replace(r"\s+", " ", regex=True).str.strip()
        counts = pairs.groupby(["code", "text"], as_index=False)["n"].sum()
        best = (counts.sort_values(["code", "n", "text"], ascending=[True, False, True], kind="stable")
                .drop_duplicates("code").rename(columns={"code": "item_id"})[["item_id", "text"]])
        missing = sorted(set(items.tolist()) - set(best["item_id"].tolist()))
        if missing:
            best = pd.concat([best, pd.DataFrame({"item_id": missing, "text": [""] * len(missing)})])
        return best.sort_values("item_id", kind="stable").reset_index(drop=True), len(missing)

    def _sales(self, kept: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
        day = kept["when"].dt.normalize()
        calendar = pd.date_range(day.min(), day.max(), freq="D")
        trading = calendar.isin(day.unique()).astype(np.int64)
        daily = kept.assign(ds=day)
        parts: list[pd.DataFrame] = []
        meta: dict[str, Any] = {"panel": self.panel, "calendar": [str(calendar[0].date()), str(calendar[-1].date())],
                                "n_trading_days": int(trading.sum())}
        if self.panel in ("per_product_and_total", "total"):
            total = daily.groupby("ds")[["quantity", "revenue"]].sum().reindex(calendar, fill_value=0.0)
            parts.append(pd.DataFrame({"unique_id": "total", "ds": calendar, "y": total["quantity"].to_numpy(),
                                       "revenue": total["revenue"].to_numpy(), "trading_day": trading}))
        if self.panel in ("per_product_and_total", "per_product"):
            volume = daily.groupby("code")["quantity"].sum()
            ranked = volume.reset_index().sort_values(["quantity", "code"], ascending=[False, True], kind="stable")
            chosen = ranked["code"].tolist()[: self.top_products] if self.top_products else ranked["code"].tolist()
            sub = daily[daily["code"].isin(chosen)]
            grid = pd.MultiIndex.from_product([sorted(chosen), calendar], names=["code", "ds"])
            per = sub.groupby(["code", "ds"])[["quantity", "revenue"]].sum().reindex(grid, fill_value=0.0)
            parts.append(pd.DataFrame({"unique_id": per.index.get_level_values("code"),
                                       "ds": per.index.get_level_values("ds"), "y": per["quantity"].to_numpy(),
                                       "revenue": per["revenue"].to_numpy(),
                                       "trading_day": np.tile(trading, len(chosen))}))
            meta["products"] = chosen
        sales = pd.concat(parts, ignore_index=True)
        sales["revenue"] = sales["revenue"].round(2)
        return sales, meta
