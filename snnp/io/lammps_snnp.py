"""Kernel-table files for the LAMMPS ``pair_style snnp`` plugin (lammps_plugin/).

One plain-text, versioned file holds everything the shared C kernel (src_cython/kernels.h)
reads for one model of any rung, exactly as ``Model.tables`` packs it, plus the per-species
reference energies e0 that the Python side adds on top::

    snnp-lammps 3
    # free comment lines start with '#'
    species 2
    Ti O
    cutoff 1
    5.5
    K_r 1
    ...
    end

After the header line the file is a sequence of records ``name count`` followed by ``count``
whitespace-separated values (on as many lines as convenient), ended by ``end``.  Records::

    species       names of the species (LAMMPS pair_coeff maps atom types to these)
    cutoff        global cutoff (A); K_r, K_a: radial and angular filter counts
    e0            per-species reference energy (eV), added to every atom's energy
    blk_x0 blk_h blk_nint blk_off coef        the spline blocks (kernels.h layout)
    phi_blk rho_blk f_blk g_blk U_blk U0      per-species / per-pair block tables, -1 absent
    mlp_nlayers   0 = no MLP;  mlp_activation: tanh | softplus | silu | linear
    mlp_widths    nlayers + 1 layer widths (K_r + K_a, hidden.., 1)
    mlp_offsets   offset of each species' weights in mlp_weights
    mlp_weights   per species, per layer: W (out x in, row-major) then b
    mlp_mean mlp_inv_scale   input standardisation x = (G - mean) * inv_scale, per species
    mlp_zero      MLP output at G = 0 per species (subtracted: an isolated atom has energy e0)

Optional records (version 3 and later; a file without them describes a model without these
parts)::

    core          the short-range rule (snnp.core.ZBLCore), ns * ns * 11 doubles, per ordered
                  species pair (si * ns + sj): zz, 1/a, r_in, r_out, sw1..sw5, r_c, w
                  (kernels.h snnp_core / snnp_clamped); written only when the model has a core
    grade_M       centres per species of the extrapolation grade (snnp.ExtrapolationGrade)
    grade_ref     per species, with KG = K_r + K_a: mean[KG], the whitening matrix W[KG][KG]
                  (row-major, z = W (G - mean)), inv_radius, then grade_M centres of KG
                  doubles (kernels.h snnp_grade); grade_M and grade_ref are written only when
                  the model has an extrapolation grade

Versions: 2 stores each block's spline coefficients c0[K] c1[K] c2[K] c3[K] per interval;
3 adds the optional records above, with a per-filter grade (grade_ref per species: mean[KG],
inv_scale[KG], inv_radius, centres); 4 stores the grade's full whitening matrix instead of
inv_scale.  Versions 2 and 3 are still read (a version-3 grade as the diagonal whitening
diag(inv_scale)); version 1 (another coefficient order) is refused.

Floats are written with Python's shortest round-trip ``repr``, so the plugin reads back the
very doubles the Python kernels use.  Units: LAMMPS ``metal`` (eV, A).
"""
import math
import os

import numpy as np

from .._version import __version__
from .atomic import atomic_write
from .modelfile import load_model, model_class

__all__ = ["write_kernel_tables", "read_kernel_tables", "FORMAT", "VERSION"]

FORMAT = "snnp-lammps"
VERSION = 4      # 3: optional core, grade_M, grade_ref records; 4: grade_ref with W[KG][KG]
#: versions read: 2 (c0[K] c1[K] c2[K] c3[K] per interval, no core or grade), 3 and 4
READ_VERSIONS = (2, 3, 4)
ACTIVATIONS = ("tanh", "softplus", "silu", "linear")   # index = kernels.h SNNP_TANH...
PER_LINE = 4

_INT_RECORDS = ("K_r", "K_a", "blk_nint", "blk_off", "phi_blk", "rho_blk", "f_blk", "g_blk",
                "U_blk", "mlp_nlayers", "mlp_widths", "mlp_offsets", "grade_M")
_FLOAT_RECORDS = ("cutoff", "e0", "blk_x0", "blk_h", "coef", "U0", "mlp_weights", "mlp_mean",
                  "mlp_inv_scale", "mlp_zero", "core", "grade_ref")
#: kernels.h SNNP_CORE_STRIDE
CORE_STRIDE = 11


def _float_text(v, name):
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"cannot export a non-finite value ({v}) in {name}")
    return repr(v)


def _record(name, values, fmt):
    values = list(values)
    lines = [f"{name} {len(values)}"]
    for k in range(0, len(values), PER_LINE):
        lines.append(" ".join(fmt(v) for v in values[k:k + PER_LINE]))
    return lines


def kernel_tables(model):
    """The records of a model's kernel-table file, as a dict name -> list of values."""
    t = model.tables
    a = t.arrays()
    ns, KG = t.n_species, t.K_r + t.K_a
    nblk = len(model._block_layout()[0])
    L = int(a["mlp_nlayers"])
    rec = {
        "species": list(model.species),
        "cutoff": [t.cutoff],
        "K_r": [t.K_r],
        "K_a": [t.K_a],
        "e0": np.asarray(model.e0, dtype=float).tolist(),
        # blocks: Tables pads empty tables to one dummy entry; keep only the real blocks
        "blk_x0": a["blk_x0"][:nblk].tolist(),
        "blk_h": a["blk_h"][:nblk].tolist(),
        "blk_nint": a["blk_nint"][:nblk].tolist(),
        "blk_off": a["blk_off"][:nblk].tolist(),
        "coef": a["coef"][:t.n_coef].tolist() if nblk else [],
        "phi_blk": a["phi_blk"].tolist(),
        "rho_blk": a["rho_blk"].tolist(),
        "f_blk": a["f_blk"].tolist(),
        "g_blk": a["g_blk"].tolist(),
        "U_blk": a["U_blk"].tolist(),
        "U0": a["U0"].tolist(),
        "mlp_nlayers": [L],
        "mlp_activation": [ACTIVATIONS[int(a["mlp_act"])]],
        "mlp_widths": a["mlp_width"].tolist() if L else [],
        "mlp_offsets": a["mlp_off"].tolist() if L else [],
        "mlp_weights": a["mlp_w"].tolist() if L else [],
        "mlp_mean": a["mlp_mean"][:ns * KG].tolist() if L else [],
        "mlp_inv_scale": a["mlp_inv_scale"][:ns * KG].tolist() if L else [],
        "mlp_zero": a["mlp_zero"].tolist() if L else [],
    }
    if a.get("core") is not None:
        rec["core"] = np.asarray(a["core"], dtype=float).ravel().tolist()
        if len(rec["core"]) != ns * ns * CORE_STRIDE:
            raise ValueError(f"core: expected {ns * ns * CORE_STRIDE} entries, got "
                             f"{len(rec['core'])}")
    M = int(a.get("grade_M") or 0)
    if M > 0:
        rec["grade_M"] = [M]
        rec["grade_ref"] = np.asarray(a["grade_ref"], dtype=float).ravel().tolist()
        want = ns * grade_stride(KG, M)
        if len(rec["grade_ref"]) != want:
            raise ValueError(f"grade_ref: expected {want} entries, got {len(rec['grade_ref'])}")
    for name in ("phi_blk", "g_blk"):
        if len(rec[name]) != ns * ns:
            raise ValueError(f"{name}: expected {ns * ns} entries, got {len(rec[name])}")
    for name in ("rho_blk", "f_blk", "U_blk", "U0", "e0"):
        if len(rec[name]) != ns:
            raise ValueError(f"{name}: expected {ns} entries, got {len(rec[name])}")
    return rec


def write_kernel_tables(model, path, comment=None):
    """Write ``model`` (any rung, any number of species) for ``pair_style snnp`` (atomically).

    Use in LAMMPS as ``pair_style snnp`` and ``pair_coeff * * PATH El1 El2 ..``.  A model's
    ZBL core (``model.core``) and extrapolation grade (``model.extrapolation``) go into the
    file too (docs/lammps.md, "Short range" and "Extrapolation grade").
    """
    for s in model.species:
        if not s or any(c.isspace() for c in s):
            raise ValueError(f"species names must be non-empty and without spaces, got {s!r}")
    rec = kernel_tables(model)
    lines = [f"{FORMAT} {VERSION}",
             f"# {type(model).__name__} written by snnp {__version__}: "
             f"species {' '.join(model.species)}, {model.n_radial}+{model.n_angular} filters, "
             f"{model.n_params} parameters"
             + ("; ZBL core" if "core" in rec else "")
             + (f"; extrapolation grade ({rec['grade_M'][0]} centres)" if "grade_M" in rec
                else "")
             + "; LAMMPS units metal; pair_style snnp"]
    for line in (comment or "").splitlines():
        lines.append("# " + line)
    for name, values in rec.items():
        if name in ("species", "mlp_activation"):
            fmt = str
        elif name in _INT_RECORDS:
            fmt = lambda v: str(int(v))
        else:
            fmt = lambda v, name=name: _float_text(v, name)
        lines += _record(name, values, fmt)
    lines.append("end")
    with atomic_write(path) as fh:
        fh.write("\n".join(lines) + "\n")


def grade_stride(KG, M):
    """Doubles per species in grade_ref (version 4, kernels.h snnp_grade)."""
    return KG * (KG + 1) + 1 + M * KG


def read_kernel_tables(path):
    """Read a kernel-table file (version 2, 3 or 4) back into a dict of records (lists); for
    checks and tools.  The optional records (core, grade_M, grade_ref) are present only when
    the file has them; a version-3 grade_ref comes back in the version-4 layout."""
    path = os.fspath(path)
    with open(path) as fh:
        lines = [ln for ln in fh.read().splitlines() if not ln.lstrip().startswith("#")]
    if not lines or lines[0].split()[:1] != [FORMAT]:
        raise ValueError(f"{path}: not an {FORMAT} file (first line {lines[:1]})")
    head = lines[0].split()
    try:
        version = int(head[1])
    except (IndexError, ValueError):
        raise ValueError(f"{path}: {FORMAT} header without a version ({lines[0]!r})") from None
    if version not in READ_VERSIONS:
        raise ValueError(f"{path}: {FORMAT} version {version}; this snnp reads versions "
                         + ", ".join(map(str, READ_VERSIONS[:-1])) + f" and {READ_VERSIONS[-1]}")
    tokens = " ".join(lines[1:]).split()
    out, pos = {}, 0
    while True:
        if pos >= len(tokens):
            raise ValueError(f"{path}: file ends without 'end' (truncated?)")
        name = tokens[pos]
        if name == "end":
            break
        count = int(tokens[pos + 1])
        vals = tokens[pos + 2:pos + 2 + count]
        if len(vals) != count:
            raise ValueError(f"{path}: record {name} needs {count} values, file ends first")
        if name in _INT_RECORDS:
            vals = [int(v) for v in vals]
        elif name in _FLOAT_RECORDS:
            vals = [float(v) for v in vals]
        out[name] = vals
        pos += 2 + count
    if version < 3 and any(k in out for k in ("core", "grade_M", "grade_ref")):
        raise ValueError(f"{path}: {FORMAT} version {version} has no core or grade records")
    if version == 3 and "grade_ref" in out:
        out["grade_ref"] = _grade_ref_v3_to_v4(path, out)
    return out


def _grade_ref_v3_to_v4(path, rec):
    """A version-3 grade_ref (per species mean, inv_scale, inv_radius, centres) in the
    version-4 layout, with the whitening matrix diag(inv_scale)."""
    KG, M = rec["K_r"][0] + rec["K_a"][0], rec["grade_M"][0]
    flat, ns = np.asarray(rec["grade_ref"], dtype=float), len(rec["species"])
    if len(flat) != ns * (2 * KG + 1 + M * KG):
        raise ValueError(f"{path}: grade_ref has {len(flat)} values, version 3 needs "
                         f"{ns * (2 * KG + 1 + M * KG)}")
    rows = []
    for part in flat.reshape(ns, -1):
        rows += [part[:KG], np.diag(part[KG:2 * KG]).ravel(), part[2 * KG:]]
    return np.concatenate(rows).tolist()


def _main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(
        prog="python -m snnp.io.lammps_snnp",
        description="Convert an snnp model file (or a LAMMPS meam/spline file) into the "
                    "kernel-table file pair_style snnp reads.")
    parser.add_argument("model", help="snnp JSON model file, or a *.meam.spline file")
    parser.add_argument("output", help="file to write (e.g. model.snnp)")
    parser.add_argument("--species", nargs="+", help="element(s) of an old-format meam/spline")
    args = parser.parse_args(argv)
    if args.model.endswith(".meam.spline") or args.model.endswith(".spline"):
        model = model_class("SplineMEAM").from_lammps(args.model, species=args.species)
    else:
        model = load_model(args.model)
    write_kernel_tables(model, args.output)
    print(f"wrote {args.output}: {type(model).__name__} species {model.species}, cutoff "
          f"{model.cutoff!r}; use: pair_style snnp / pair_coeff * * {args.output} "
          + " ".join(model.species))


if __name__ == "__main__":
    _main()
