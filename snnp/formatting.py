"""Numbers as the tables and plot legends print them (ladder.md, snnp eval, parity plots)."""
import numpy as np

__all__ = ["format_error"]


def format_error(value, digits=3):
    """An error (RMSE, MAE, cost) for a table: ``digits`` significant figures (all the
    integer digits from 10**digits up), no exponent between 1e-3 and 1e6; values below 1e-9 (round-off, as the force RMSE of a group of
    perfect crystals, whose forces are all zero) print as "0"; None and NaN as "-"."""
    if value is None:
        return "-"
    v = float(value)
    if np.isnan(v):
        return "-"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    if abs(v) < 1e-9:
        return "0"
    rounded = float(f"{v:.{digits}g}")              # round first: 9.996 -> 10.0, not 10.00
    e = int(np.floor(np.log10(abs(rounded))))
    if e < -3 or e >= 6:
        return f"{rounded:.{digits - 1}e}"
    if e >= digits - 1:                             # 1234.5 -> 1234, not 1230
        return f"{v:.0f}"
    return f"{rounded:.{digits - 1 - e}f}"
