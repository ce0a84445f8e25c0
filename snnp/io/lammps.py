"""LAMMPS ``pair_style meam/spline`` potential files, old and new format.

Layout (after one comment line): in the new format a line ``meam/spline N El1 .. ElN``, then
the splines phi (each unordered species pair, (1,1) (1,2) .. (2,2) ..), rho, U and f (each
species) and g (each pair).  Each spline is, in the new format, a line ``spline3eq``, the knot
count, ``d0 dN``, then one ``x y y''`` line per knot; the old single-element format has no
``spline3eq`` line and an extra (ignored) line after ``d0 dN``.  LAMMPS ignores the third
column and recomputes it; knots must be uniform.
"""
import os

import numpy as np
from ase.data import chemical_symbols

from ..splines import Spline
from .atomic import atomic_write

__all__ = ["read_meam_spline", "write_meam_spline"]


class _Lines:
    """Line reader that says where it is when something is wrong."""

    def __init__(self, path):
        self.path = os.fspath(path)
        try:
            with open(self.path, encoding="utf-8") as fh:
                self.lines = fh.read().splitlines()
        except UnicodeDecodeError as exc:
            raise ValueError(f"{self.path}: not a text file, so not a LAMMPS potential file "
                             f"(byte {exc.start} is {exc.object[exc.start:exc.start + 1]!r})") from None
        self.pos = 0

    def error(self, msg):
        return ValueError(f"{self.path}, line {self.pos}: {msg}")

    def next(self, what):
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            self.pos += 1
            if line.strip():
                return line
        raise ValueError(f"{self.path}: file ends (after line {self.pos}) while reading {what}; "
                         "the potential file is truncated")

    def numbers(self, count, what):
        line = self.next(what)
        fields = line.split()
        if len(fields) < count:
            raise self.error(f"expected {count} numbers for {what}, got {line.strip()!r}")
        try:
            values = [float(v) for v in fields[:count]]
        except ValueError:
            raise self.error(f"expected {count} numbers for {what}, got {line.strip()!r}") from None
        for text, value in zip(fields, values):
            # float() reads nan, inf, infinity in any case: a file holding one is broken (even
            # in the y'' column, which LAMMPS recomputes)
            if not np.isfinite(value):
                raise self.error(f"{what} holds the non-finite value {text!r}; every number in "
                                 f"a meam/spline file must be finite")
        return values


def _read_spline(r, new_format, name):
    if new_format:
        tag = r.next(f"{name} header").split()[0]
        if tag != "spline3eq":
            raise r.error(f"spline {name}: expected 'spline3eq', got {tag!r}")
    line = r.next(f"knot count of {name}")
    try:
        n = int(line.split()[0])
    except ValueError:
        raise r.error(f"spline {name}: expected the number of knots, got {line.strip()!r}") from None
    if n < 2:
        raise r.error(f"spline {name}: needs at least 2 knots, got {n}")
    d0, dN = r.numbers(2, f"end derivatives of {name}")
    if not new_format:
        r.next(f"flags line of {name}")
    knots = np.array([r.numbers(3, f"knot {k} of {name}") for k in range(n)])
    try:
        return Spline.from_knots(knots[:, 0], knots[:, 1], d0, dN)
    except ValueError as exc:
        raise ValueError(f"{r.path}: spline {name}: {exc}") from None


def _species_from_filename(path):
    stem = os.path.basename(os.fspath(path))
    for length in (2, 1):
        if stem[:length] in chemical_symbols[1:] and not stem[length:length + 1].islower():
            return stem[:length]
    return None


def read_meam_spline(path, species=None):
    """Read a ``meam/spline`` file into a dict of species and splines (see ``SplineMEAM``)."""
    r = _Lines(path)
    comment = r.next("the comment line")
    second = r.next("the first spline")
    fields = second.split()
    new_format = fields[0] == "meam/spline"
    if new_format:
        try:
            n = int(fields[1])
        except (IndexError, ValueError):
            raise r.error(f"expected 'meam/spline N El1 .. ElN', got {second.strip()!r}") from None
        names = fields[2:2 + n]
        if n < 1 or len(names) != n:
            raise r.error(f"expected 'meam/spline N El1 .. ElN' with N >= 1, got {second.strip()!r}")
        if species is not None and list(species) != names:
            raise ValueError(f"{r.path} names species {names}, not {list(species)}")
        species = names
    else:
        r.pos -= 1
        if species is None:
            species = [_species_from_filename(path)]
            if species[0] is None:
                raise ValueError(f"{r.path} is an old-format (single-element) meam/spline file, "
                                 "which does not name its element: pass species=['Si'] (say)")
        species = list(species)
        if len(species) != 1:
            raise ValueError(f"{r.path} is an old-format file with one species, got {species}")
    n = len(species)
    pairs = [(a, b) for a in range(n) for b in range(a, n)]
    pn = lambda p: f"{species[p[0]]}-{species[p[1]]}"
    phi = {p: _read_spline(r, new_format, f"phi[{pn(p)}]") for p in pairs}
    rho = [_read_spline(r, new_format, f"rho[{s}]") for s in species]
    U = [_read_spline(r, new_format, f"U[{s}]") for s in species]
    f = [_read_spline(r, new_format, f"f[{s}]") for s in species]
    g = {p: _read_spline(r, new_format, f"g[{pn(p)}]") for p in pairs}
    return {"species": species, "phi": phi, "rho": rho, "U": U, "f": f, "g": g,
            "comment": comment, "format": "new" if new_format else "old"}


def _write_spline(fh, s, new_format):
    if new_format:
        fh.write("spline3eq\n")
    fh.write(f"{s.n_knots}\n{float(s.d0)!r} {float(s.dN)!r}\n")
    if not new_format:
        fh.write("1 0 1 0\n")
    for x, y, y2 in zip(s.knots, s.values, s.second_derivatives()):
        fh.write(f"{float(x)!r} {float(y)!r} {float(y2)!r}\n")


def write_meam_spline(path, species, phi, rho, U, f, g, format="new", comment=None):
    """Write splines as a ``meam/spline`` file (atomically); ``format`` is "new" or "old"."""
    if format not in ("new", "old"):
        raise ValueError(f"format must be 'new' or 'old', got {format!r}")
    n = len(species)
    if format == "old" and n != 1:
        raise ValueError(f"the old meam/spline format holds one species, this model has {n}")
    new = format == "new"
    pairs = [(a, b) for a in range(n) for b in range(a, n)]
    comment = comment or f"meam/spline potential for {' '.join(species)} written by snnp"
    with atomic_write(path) as fh:
        fh.write("# " + comment.replace("\n", " ") + "\n")
        if new:
            fh.write(f"meam/spline {n} {' '.join(species)}\n")
        for p in pairs:
            _write_spline(fh, phi[p], new)
        for group in (rho, U, f):
            for s in group:
                _write_spline(fh, s, new)
        for p in pairs:
            _write_spline(fh, g[p], new)
