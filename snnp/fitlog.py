"""A fit's learning curve as a CSV file (``fit-log.csv``), readable without Matplotlib.

    from snnp.fitlog import write_fit_log, read_fit_log
    write_fit_log(history, "out/fit-log.csv")
    history = read_fit_log("out/fit-log.csv")

``history`` is a list of dicts, one per point of the curve (``model.provenance["history"]``
after a fit), with the keys of ``HISTORY_KEYS``: ``step``, ``seconds`` (since the fit
started), ``objective`` (at checkpoints; None between them), ``train_energy_rmse``
(meV/atom), ``train_force_rmse`` (eV/Å), ``validation_energy_rmse`` and
``validation_force_rmse`` (None without validation data), and ``checkpoint`` (1 at a
checkpoint, 0 for a point between checkpoints).  ``snnp.plotting.plot_learning(history, path)`` draws it.
"""
import csv
import io

__all__ = ["write_fit_log", "read_fit_log", "COLUMNS", "HISTORY_KEYS"]

#: (history key, CSV column) in the file's column order; the columns name their units
COLUMNS = (
    ("step", "step"),
    ("seconds", "seconds"),
    ("objective", "objective"),
    ("train_energy_rmse", "train_energy_rmse_meV_per_atom"),
    ("train_force_rmse", "train_force_rmse_eV_per_A"),
    ("validation_energy_rmse", "validation_energy_rmse_meV_per_atom"),
    ("validation_force_rmse", "validation_force_rmse_eV_per_A"),
    ("checkpoint", "checkpoint"),
)
HISTORY_KEYS = tuple(key for key, _ in COLUMNS)


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    return repr(float(value))           # repr: the float reads back bit for bit


def write_fit_log(history, path):
    """Write ``history`` (one dict per checkpoint, keys ``HISTORY_KEYS``; a missing key or None
    is an empty cell, other keys are ignored) as CSV with the columns of ``COLUMNS``, atomically.
    """
    from .io.atomic import atomic_write
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([column for _, column in COLUMNS])
    for k, row in enumerate(history):
        try:
            writer.writerow([_cell(row.get(key)) for key in HISTORY_KEYS])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"fit-log row {k}: {exc}") from None
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())


def read_fit_log(path):
    """The history a ``write_fit_log`` file holds: a list of dicts with the keys of
    ``HISTORY_KEYS`` (``step`` an int, the rest floats, an empty cell None)."""
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        expected = [column for _, column in COLUMNS]
        if header != expected:
            raise ValueError(f"{path} is not an snnp fit log: its columns are {header}, "
                             f"expected {expected}")
        out = []
        for line, cells in enumerate(reader, start=2):
            if not cells:
                continue
            if len(cells) != len(COLUMNS):
                raise ValueError(f"{path} line {line}: {len(cells)} values, expected "
                                 f"{len(COLUMNS)}")
            row = {}
            for (key, _), cell in zip(COLUMNS, cells):
                try:
                    row[key] = None if cell == "" else float(cell)
                    if key in ("step", "checkpoint") and row[key] is not None \
                            and row[key].is_integer():
                        row[key] = int(row[key])
                except ValueError:
                    raise ValueError(f"{path} line {line}: {key} is not a number "
                                     f"({cell!r})") from None
            out.append(row)
    return out

