"""The MLP embedding: a small per-species network from an atom's filters G_i to its energy.

    eps_a(G) = MLP_a((G - mean_a) / scale_a) - MLP_a((0 - mean_a) / scale_a)

Inputs are standardised with per-species statistics stored with the model (frozen when
training starts); the value at G = 0 is subtracted so an isolated atom has energy e0 alone.
The network itself is evaluated by the C kernels (``snnp_mlp`` in kernels.h) for every rung and
front end; this class only holds the weights.  Activations are smooth (tanh, softplus, SiLU;
"linear" exists for tests and degenerate cases), never ReLU: forces need continuous slopes.
"""
import numpy as np

__all__ = ["MLPEmbedding", "ACTIVATIONS"]

ACTIVATIONS = ("tanh", "softplus", "silu", "linear")


class MLPEmbedding:
    """Per-species multilayer perceptrons with a shared architecture.

    Parameters
    ----------
    n_species, n_inputs : int
    widths : sequence of int
        Hidden-layer widths, e.g. (16, 16); the output layer has one unit.
    activation : str
    weights : list (per species) of lists of (W, b) per layer, W of shape (out, in); default
        is ``init`` with ``seed``.
    mean, scale : arrays (n_species, n_inputs) of the input standardisation (default 0 and 1)
    """

    def __init__(self, n_species, n_inputs, widths=(16, 16), activation="tanh", weights=None,
                 mean=None, scale=None, seed=0):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS} (smooth), got {activation!r}")
        self.n_species, self.n_inputs = int(n_species), int(n_inputs)
        self.widths = tuple(int(w) for w in widths)
        if any(w < 1 for w in self.widths):
            raise ValueError(f"hidden widths must be >= 1, got {self.widths}")
        self.activation = activation
        self.layer_sizes = [self.n_inputs, *self.widths, 1]
        if weights is None:
            weights = self.init(seed)
        self.weights = [[(np.array(W, dtype=float), np.array(b, dtype=float)) for W, b in layers]
                        for layers in weights]
        if len(self.weights) != self.n_species:
            raise ValueError(f"need weights for {self.n_species} species, got {len(self.weights)}")
        for layers in self.weights:
            if len(layers) != len(self.layer_sizes) - 1:
                raise ValueError("weights do not match the number of layers")
            for l, (W, b) in enumerate(layers):
                shape = (self.layer_sizes[l + 1], self.layer_sizes[l])
                if W.shape != shape or b.shape != (shape[0],):
                    raise ValueError(f"layer {l}: W must be {shape} and b ({shape[0]},), got "
                                     f"{W.shape} and {b.shape}")
        shape = (self.n_species, self.n_inputs)
        self.mean = np.zeros(shape) if mean is None else np.array(mean, dtype=float).reshape(shape)
        self.scale = np.ones(shape) if scale is None else np.array(scale, dtype=float).reshape(shape)
        if np.any(self.scale <= 0) or not np.all(np.isfinite(self.scale)):
            raise ValueError("input scales must be positive and finite")

    def init(self, seed=0):
        """Glorot-normal hidden layers and a zero output layer (the untrained MLP is zero)."""
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(self.n_species):
            layers = []
            for l in range(len(self.layer_sizes) - 1):
                n_in, n_out = self.layer_sizes[l], self.layer_sizes[l + 1]
                last = l == len(self.layer_sizes) - 2
                W = np.zeros((n_out, n_in)) if last else rng.normal(size=(n_out, n_in)) * np.sqrt(2.0 / (n_in + n_out))
                layers.append((W, np.zeros(n_out)))
            out.append(layers)
        return out

    @property
    def n_params(self):
        return self.n_species * sum(W.size + b.size for W, b in self.weights[0])

    def flat_weights(self):
        """One flat array per species in the kernels' layout: per layer W (row-major) then b."""
        return [np.concatenate([np.concatenate([W.ravel(), b]) for W, b in layers])
                for layers in self.weights]

    def kernel_spec(self):
        return {"widths": self.widths, "activation": self.activation,
                "weights": self.flat_weights(), "mean": self.mean, "scale": self.scale}

    def set_normalization(self, G, species):
        """Standardise inputs with per-species mean and standard deviation of filters G."""
        G, species = np.asarray(G, dtype=float), np.asarray(species)
        for a in range(self.n_species):
            rows = G[species == a]
            if len(rows) == 0:
                continue
            self.mean[a] = rows.mean(axis=0)
            std = rows.std(axis=0)
            self.scale[a] = np.where(std > 1e-8 * max(np.abs(rows).max(), 1e-300), std, 1.0)

    def copy(self):
        return MLPEmbedding.from_dict(self.to_dict())

    def train_pass(self, species, x, xdot, kappa):
        """Forward, tangent and one reverse sweep through the per-species networks.

        For rows x (standardised filters) with tangents xdot, returns the adjoints of
        Phi = sum_rows kappa * out(x) + d out(x)[xdot]:  x_bar = kappa grad out + H xdot,
        xdot_bar = grad out, and the gradient of Phi with respect to the flat weights
        (docs/theory.md, "Training gradients").  Network values are float64 NumPy; inference
        uses the C kernel (snnp_mlp), and the tests check both agree.
        """
        species = np.asarray(species)
        x_bar = np.zeros_like(x)
        xdot_bar = np.zeros_like(x)
        grads = []
        for a, layers in enumerate(self.weights):
            rows = np.flatnonzero(species == a)
            grads.append(_species_pass(layers, self.activation, x[rows], xdot[rows],
                                       kappa[rows], x_bar, xdot_bar, rows))
        return x_bar, xdot_bar, np.concatenate(grads)

    def embedded(self, n_inputs, inputs, widths, seed=0):
        """A wider network of the same depth that computes exactly this one.

        ``inputs[k]``: where this network's input k sits among the ``n_inputs`` of the new one;
        ``widths``: the new hidden widths, each at least this network's.  This network's units
        become the first units of every layer and see only each other (their weights and the
        input standardisation are copied); each new unit takes seeded Glorot-normal weights
        from every unit below it and feeds only new units, and the output takes nothing from
        them, so the output is unchanged while every weight has a gradient.  The new inputs'
        standardisation starts at mean 0, scale 1 (``set_normalization`` sets it from data).
        Used by ``SNNP.grown_from`` to climb from a smaller s-NNP without distilling."""
        inputs, widths = np.asarray(inputs, int), tuple(int(w) for w in widths)
        if len(widths) != len(self.widths) or any(w < o for w, o in zip(widths, self.widths)):
            raise ValueError(f"an embedding keeps the depth and widens every layer: widths "
                             f"{widths} for a network of widths {self.widths}")
        if (len(inputs) != self.n_inputs or len(set(inputs.tolist())) != len(inputs)
                or inputs.min() < 0 or inputs.max() >= n_inputs):
            raise ValueError(f"inputs must place each of the {self.n_inputs} inputs at a "
                             f"distinct index below {n_inputs}, got {inputs.tolist()}")
        out = MLPEmbedding(self.n_species, n_inputs, widths, self.activation, seed=seed)
        for old, new in zip(self.weights, out.weights):
            for l, ((W, b), (Wn, bn)) in enumerate(zip(old, new)):
                rows, cols = W.shape
                last = l == len(old) - 1
                if not last:
                    Wn[:rows, :] = 0.0                  # old units see old units only
                else:
                    Wn[:, :] = 0.0                      # the output sees old units only
                if l == 0:
                    Wn[:rows, inputs] = W
                else:
                    Wn[:rows, :cols] = W
                bn[:] = 0.0
                bn[:rows] = b
        out.mean[:, inputs] = self.mean
        out.scale[:, inputs] = self.scale
        return out

    def values(self, species, x):
        """Network outputs for standardised rows x (NumPy; the kernels use snnp_mlp)."""
        species = np.asarray(species)
        out = np.zeros(len(x))
        for a, layers in enumerate(self.weights):
            rows = np.flatnonzero(species == a)
            out[rows] = forward(layers, self.activation, x[rows])[0]
        return out

    def distil(self, G, species, target, max_iter=500):
        """Fit the network so that eps(G) = MLP(x) - MLP(x0) matches ``target`` per row.

        Sets the input standardisation from G first.  Used to climb the ladder: an s-NNP
        starts from a fitted rung 0 by learning its embedding U(R_1 + A_1) - U(0).  Returns the
        RMS misfit left (eV)."""
        from scipy.optimize import minimize
        G, species, target = np.asarray(G, float), np.asarray(species), np.asarray(target, float)
        self.set_normalization(G, species)
        x = (G - self.mean[species]) / self.scale[species]
        every = np.arange(self.n_species)
        x0 = (0.0 - self.mean) / self.scale
        zeros, n = np.zeros_like(x), len(x)

        def objective(p):
            self.set_flat(p)
            r = self.values(species, x) - self.values(every, x0)[species] - target
            kappa = 2.0 * r / n
            kref = -np.bincount(species, weights=kappa, minlength=self.n_species)
            g = (self.train_pass(species, x, zeros, kappa)[2]
                 + self.train_pass(every, x0, np.zeros_like(x0), kref)[2])
            return float(np.mean(r * r)), g

        res = minimize(objective, self.get_flat(), jac=True, method="L-BFGS-B",
                       options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-12})
        self.set_flat(res.x)
        return float(np.sqrt(res.fun))

    def get_flat(self):
        return np.concatenate(self.flat_weights())

    def set_flat(self, p):
        """Set all species' weights from one flat array (the layout of ``flat_weights``)."""
        p = np.asarray(p, dtype=float)
        per = self.n_params // self.n_species
        for a, layers in enumerate(self.weights):
            o = a * per
            new = []
            for W, b in layers:
                Wn = p[o:o + W.size].reshape(W.shape)
                o += W.size
                new.append((Wn, p[o:o + b.size].copy()))
                o += b.size
            self.weights[a] = new

    def to_dict(self):
        return {"widths": list(self.widths), "activation": self.activation,
                "n_inputs": self.n_inputs,
                "weights": [[{"W": W.tolist(), "b": b.tolist()} for W, b in layers]
                            for layers in self.weights],
                "mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d):
        weights = [[(layer["W"], layer["b"]) for layer in layers] for layers in d["weights"]]
        return cls(len(weights), d["n_inputs"], d["widths"], d["activation"], weights=weights,
                   mean=d["mean"], scale=d["scale"])


def forward(layers, activation, x, xp=np):
    """One species' network on rows x: outputs (n,) and the activation slopes of each hidden
    layer (for a reverse sweep); ``xp``: NumPy or CuPy."""
    slopes = []
    for l, (W, b) in enumerate(layers):
        x = x @ W.T + b
        if l + 1 < len(layers):
            x, slope, _ = activation_derivatives(activation, x, xp)
            slopes.append(slope)
    return x[:, 0], slopes


def activation_derivatives(name, z, xp=np):
    """Activation value and its first and second derivatives (``xp``: NumPy or CuPy)."""
    if name == "tanh":
        t = xp.tanh(z)
        return t, 1.0 - t * t, -2.0 * t * (1.0 - t * t)
    if name == "softplus":
        sig = 0.5 * (1.0 + xp.tanh(0.5 * z))
        return xp.logaddexp(0.0, z), sig, sig * (1.0 - sig)
    if name == "silu":
        sig = 0.5 * (1.0 + xp.tanh(0.5 * z))
        return z * sig, sig * (1.0 + z * (1.0 - sig)), sig * (1.0 - sig) * (2.0 + z * (1.0 - 2.0 * sig))
    return z, xp.ones_like(z), xp.zeros_like(z)


def _species_pass(layers, activation, x, xdot, kappa, x_bar, xdot_bar, rows):
    a, adot = x, xdot
    cache = []
    for l, (W, b) in enumerate(layers):
        z, zdot = a @ W.T + b, adot @ W.T
        cache.append((a, adot, z, zdot))
        if l + 1 < len(layers):
            act, d1, _ = activation_derivatives(activation, z)
            a, adot = act, d1 * zdot
    z_bar = kappa[:, None] * np.ones((len(x), 1))
    zdot_bar = np.ones((len(x), 1))
    out = []
    for l in range(len(layers) - 1, -1, -1):
        W, b = layers[l]
        a, adot, _, _ = cache[l]
        out.append((z_bar.T @ a + zdot_bar.T @ adot, z_bar.sum(axis=0)))
        a_bar, adot_bar = z_bar @ W, zdot_bar @ W
        if l > 0:
            _, _, zp, zpdot = cache[l - 1]
            _, d1, d2 = activation_derivatives(activation, zp)
            z_bar = a_bar * d1 + adot_bar * d2 * zpdot
            zdot_bar = adot_bar * d1
    x_bar[rows] = a_bar
    xdot_bar[rows] = adot_bar
    return np.concatenate([np.concatenate([gW.ravel(), gb]) for gW, gb in out[::-1]])

