"""CDF tables: storage and load-time checks (spec §4); refcodec.encoder.cdf builds them (Annex A.2).

A table is three tensors of the model file: ``cdf`` (s32 [Rows, MaxLength], each row
padded with zeros), ``cdf_length`` (s32 [Rows]) and ``offset`` (s32 [Rows]). Row r codes
the symbols 0 .. cdf_length[r] - 2, the last of which is the escape (spec §3.5).

The decoder only checks tables (:func:`cdf_table_check`); it never computes a probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refcodec.decoder.conventions import clause
from refcodec.decoder.errors import ModelError

PRECISION = 16  # spec §3.1: every row ends at 2^16
MAX_CDF_LENGTH = 4096  # spec §4.2
OFFSET_MIN, OFFSET_MAX = -32768, 32767  # spec §4.2


@dataclass(frozen=True)
class CdfTable:
    """A checked table (spec §4.1): cdf int32 [rows, maxlen]; cdf_length, offset int32 [rows]."""

    cdf: np.ndarray
    cdf_length: np.ndarray
    offset: np.ndarray

    @property
    def rows(self) -> int:
        return self.cdf_length.shape[0]


@clause("4.2")
def cdf_table_check(cdf: np.ndarray, cdf_length: np.ndarray, offset: np.ndarray, name: str) -> CdfTable:
    """CdfTableCheck (spec §4.1, §4.2): check a table at model load; raise ModelError naming ``name``."""

    def require(ok, what, clause="4.2"):
        if not ok:
            raise ModelError(f"CDF table {name} {what}", clause)

    def require_rows(ok, what):  # ok: one bool per row
        bad = np.flatnonzero(~ok)
        require(bad.size == 0, f"row {bad[0] if bad.size else -1} {what}")

    for tensor, label, ndim in ((cdf, "cdf", 2), (cdf_length, "cdf_length", 1), (offset, "offset", 1)):
        require(isinstance(tensor, np.ndarray) and tensor.dtype == np.int32 and tensor.ndim == ndim,
                f"{label} is not a {ndim}-D s32 tensor", "4.1")
    rows, max_length = cdf.shape
    require(cdf_length.shape == (rows,) and offset.shape == (rows,),
            f"tensor shapes {cdf.shape}, {cdf_length.shape}, {offset.shape} do not agree", "4.1")
    require(rows >= 1, "has no rows")
    require(max_length <= MAX_CDF_LENGTH, f"has MaxLength {max_length} > {MAX_CDF_LENGTH}")
    require_rows((cdf_length >= 2) & (cdf_length <= max_length), f"has cdf_length outside 2 .. {max_length}")
    active = np.arange(max_length)[None, :] < cdf_length[:, None]
    steps = np.where(active[:, 1:], np.diff(cdf.astype(np.int64), axis=1), 1)
    require_rows(cdf[:, 0] == 0, "does not start at 0")
    require_rows((steps > 0).all(axis=1), "is not strictly increasing")
    require_rows(cdf[np.arange(rows), cdf_length - 1] == 1 << PRECISION, f"does not end at 2^{PRECISION}")
    require_rows(((cdf == 0) | active).all(axis=1), "has non-zero padding")
    require_rows((offset >= OFFSET_MIN) & (offset <= OFFSET_MAX),
                 f"has an offset outside {OFFSET_MIN} .. {OFFSET_MAX}")
    return CdfTable(cdf, cdf_length, offset)
