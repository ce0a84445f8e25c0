"""The ladder's presets: ``LADDER`` (name -> rung class and sizes) and ``presets()``, the
unfitted models ``snnp ladder`` and ``snnp fit <preset>`` start from."""
import numpy as np

from ..core import ZBLCore
from ..embedding import MLPEmbedding
from ..filters import FilterBank, pair_keys
from ..splines import Spline
from ..training import _elements
from .rungs import SNNP, SplineMEAM, SplineMEAMNN

__all__ = ["LADDER", "SNNP_PRESETS", "presets", "residual_presets"]


#: the ladder, from classical to machine-learned: name -> (class, K_r, K_a, hidden widths).
#: Radial filters cost one spline per pair, angular ones one per triplet, so the s-NNPs carry
#: more radial than angular filters (costs per MD step: docs/theory.md).
LADDER = {
    "smeam": (SplineMEAM, 1, 1, None),
    "smeam_nn": (SplineMEAMNN, 1, 1, (8,)),
    "snnp_small": (SNNP, 2, 2, (8,)),
    "snnp_medium": (SNNP, 12, 4, (16, 16)),
    "snnp_large": (SNNP, 16, 8, (32, 32)),
}

#: the presets that are s-NNPs (those ``residual`` can name, those a chain climb grows)
SNNP_PRESETS = tuple(n for n, v in LADDER.items() if v[0] is SNNP)


def residual_presets(residual):
    """The s-NNP presets that a ``residual`` option names, as a set: True, every s-NNP preset;
    False or None, none; otherwise an iterable of s-NNP preset names (a ValueError names any
    other)."""
    if residual is None or residual is False:
        return set()
    if residual is True:
        return set(SNNP_PRESETS)
    if isinstance(residual, str):
        residual = [residual]
    names = set(residual)
    bad = sorted(names - set(SNNP_PRESETS))
    if bad:
        raise ValueError(f"residual names s-NNP presets ({', '.join(SNNP_PRESETS)}); not {bad}")
    return names


def presets(species=("X",), cutoff=5.0, r_min=1.5, activation="tanh", seed=0,
            angular_cutoff=None, core=True, shared_filters=False, residual=False):
    """The ladder presets as unfitted models, in order from s-MEAM to large s-NNPs.

    Returns a dict name -> model; ``model.n_params`` gives each preset's size.  All presets
    have a pinned pair term and start from ``FilterBank.initial`` filters; MLPs start with a zero
    output layer and U with zero values, so an unfitted model has zero energy.
    ``angular_cutoff``: where every preset's angular filters f_k end (default: the cutoff).
    Pairs beyond it enter no triplet: the three-body terms see only the nearer neighbours, as
    in Lenosky's Si meam/spline (f ends at 3.5 A, the pair term at 4.5 A), and every rung gets
    cheaper.  Rungs 0 and 1 stay in the meam/spline form (a spline may end before the cutoff).
    ``core``: give every preset of chemical elements a ZBL core (``snnp.ZBLCore``) whose radii
    ``fit`` chooses from the training data (until then r_out = r_min); False: none.
    ``shared_filters``: tie every preset's filters across neighbour species
    (``FilterBank.share``): fewer parameters, descriptors blind to the neighbours' elements
    (the network, pair term and e0 stay per species).  Nothing changes for one species.
    ``residual``: True, the s-NNP presets (or a list of s-NNP preset names, those named) keep
    rung 0's spline embedding U on the first radial and
    angular filter and put their network on top of it, as rung 1 does (``SplineMEAMNN`` with
    the preset's filters and network): eps = U(R_1 + A_1) - U(0) + MLP(G) - MLP(0).  Climbed
    from a fitted rung 0 or 1 (``snnp.ladder.climbed``), such a preset starts with exactly the
    energies of the model below it, and where its filters leave the training data the
    network's extrapolation adds to the s-MEAM embedding instead of replacing it
    (docs/theory.md, "Residual s-NNPs").
    """
    species = list(species)
    n = len(species)
    keep_U = residual_presets(residual)
    out = {}
    for name, (cls, K_r, K_a, widths) in LADDER.items():
        if name in keep_U:
            cls = SplineMEAMNN
        filters = FilterBank.initial(species, K_r, K_a, cutoff, r_min,
                                     angular_cutoff=angular_cutoff)
        if shared_filters:
            filters = filters.share()
        pair = {k: Spline(r_min, cutoff, np.zeros(12)) for k in pair_keys(n)}
        U = [Spline(-1.0, 10.0, np.zeros(10)) for _ in species] if cls is not SNNP else None
        mlp = (MLPEmbedding(n, K_r + K_a, widths, activation, seed=seed)
               if widths is not None else None)
        if cls is SplineMEAM:        # keep this FilterBank (SplineMEAM() builds its own)
            model = SplineMEAM._from_parts(species, filters, pair=pair, U=U)
        elif cls is SplineMEAMNN:
            model = SplineMEAMNN(species, filters, U, mlp, pair=pair)
        else:
            model = SNNP(species, filters, mlp, pair=pair)
        if core and _elements(species):
            model.core = ZBLCore(species, default_r_out=r_min)
        out[name] = model
    return out
