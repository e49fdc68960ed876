"""A JIT-compiled peer: JAX + diffrax Dopri5 on the plain weight-space right-hand side, float64.

python3 bench/jax_reference.py DATA.csv INIT.csv gf|hbf|nag T [b] [gamma] [rtol] [atol] [samples]
Prints one JSON line: compile seconds (tracing, lowering and compiling, ahead of time), wall
seconds of the steady solve (the compiled function's second call; the first warms it up), steps accepted and
rejected, right-hand-side evaluations, the loss at every output time (`samples` evenly on
[0, T], both ends; default 201) and the final loss.
Same ODEs, network, data and initialization as ntkdyn and bench/scipy_reference.py (the
--data/--init files ntkdyn writes): f(W; x) = (1/sqrt m) sum_r a_r relu(w_r . x), relu'(0) = 1,
GF W' = -grad L, HBF W'' + b W' + grad L = 0, NAG W'' + (gamma/t) W' + grad L = 0 started at
rest with W''(0) = -grad L(W0) / (1 + gamma).
Needs: pip install --user jax diffrax (CPU wheels).
"""
import json
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402


def main():
    data_csv, init_csv, opt, t_end = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    b = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    gamma = float(sys.argv[6]) if len(sys.argv) > 6 else 3.0
    rtol = float(sys.argv[7]) if len(sys.argv) > 7 else 1e-6
    atol = float(sys.argv[8]) if len(sys.argv) > 8 else 1e-9
    samples = int(sys.argv[9]) if len(sys.argv) > 9 else 201
    data = np.loadtxt(data_csv, delimiter=",")
    x, y = jnp.asarray(data[:, :-1]), jnp.asarray(data[:, -1])
    init = np.loadtxt(init_csv, delimiter=",")
    a, w0 = jnp.asarray(init[:, 0]), jnp.asarray(init[:, 1:])
    m, d = w0.shape
    s = 1.0 / np.sqrt(m)

    def residual(w):
        return s * (jnp.maximum(x @ w.T, 0.0) @ a) - y

    def grad(w):
        z = x @ w.T  # n x m
        delta = s * (jnp.maximum(z, 0.0) @ a) - y
        return s * a[:, None] * (((z >= 0.0) * delta[:, None]).T @ x)

    if opt == "gf":
        def field(t, w, args):
            return -grad(w)
        y0 = w0
    else:
        def field(t, state, args):
            w, v = state
            g = grad(w)
            if opt == "hbf":
                acc = -b * v - g
            else:
                # Nesterov's ODE; its limit at t = 0 for a start at rest.
                acc = jnp.where(t > 0.0, -(gamma / jnp.where(t > 0.0, t, 1.0)) * v - g,
                                -g / (1.0 + gamma))
            return (v, acc)
        y0 = (w0, jnp.zeros_like(w0))

    ts = jnp.linspace(0.0, t_end, samples)
    term = diffrax.ODETerm(field)
    solver = diffrax.Dopri5()
    controller = diffrax.PIDController(rtol=rtol, atol=atol)

    @jax.jit
    def solve(y0):
        sol = diffrax.diffeqsolve(term, solver, t0=0.0, t1=t_end, dt0=None, y0=y0,
                                  saveat=diffrax.SaveAt(ts=ts), stepsize_controller=controller,
                                  max_steps=10_000_000)
        ws = sol.ys if opt == "gf" else sol.ys[0]
        losses = jax.vmap(lambda w: 0.5 * jnp.sum(residual(w) ** 2))(ws)
        return losses, sol.stats["num_accepted_steps"], sol.stats["num_rejected_steps"]

    # Tracing and compiling timed on their own (ahead of time), so that the compile time is
    # not a difference of two noisy solves; then one warm-up solve and the timed steady one.
    start = time.perf_counter()
    compiled = solve.lower(y0).compile()
    compile_seconds = time.perf_counter() - start
    jax.block_until_ready(compiled(y0))
    start = time.perf_counter()
    losses, accepted, rejected = compiled(y0)
    jax.block_until_ready(losses)
    wall = time.perf_counter() - start
    losses = np.asarray(losses)
    steps = int(accepted) + int(rejected)
    print(json.dumps({
        "compile_seconds": compile_seconds,
        "wall_seconds": wall,
        "accepted_steps": int(accepted),
        "rejected_steps": int(rejected),
        # Dopri5 is FSAL: six new evaluations per step, one at the start.
        "evaluations": 6 * steps + 1,
        "times": np.asarray(ts).tolist(),
        "losses": losses.tolist(),
        "final_loss": float(losses[-1]),
    }))


if __name__ == "__main__":
    main()
