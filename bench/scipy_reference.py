"""The usual tool: scipy's solve_ivp (RK45) on the plain weight-space right-hand side.

python3 bench/scipy_reference.py DATA.csv INIT.csv gf|hbf|nag T [b] [gamma] [rtol] [atol] [samples]
Prints one JSON line: wall seconds, function evaluations, final loss.
With samples K the solution is also recorded at K equally spaced output times (t_eval, the
solver's dense output) and the loss evaluated at each, as ntkdyn records its K samples.
Same network, data and initialization as ntkdyn (--data/--init files it wrote).
"""
import json
import sys
import time

import numpy as np
from scipy.integrate import solve_ivp


def main():
    data_csv, init_csv, opt, t_end = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    b = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    gamma = float(sys.argv[6]) if len(sys.argv) > 6 else 3.0
    rtol = float(sys.argv[7]) if len(sys.argv) > 7 else 1e-6
    atol = float(sys.argv[8]) if len(sys.argv) > 8 else 1e-9
    samples = int(sys.argv[9]) if len(sys.argv) > 9 else 0
    data = np.loadtxt(data_csv, delimiter=",")
    x, y = data[:, :-1], data[:, -1]
    init = np.loadtxt(init_csv, delimiter=",")
    a, w0 = init[:, 0], init[:, 1:]
    m, d = w0.shape
    s = 1.0 / np.sqrt(m)

    def grad(w):
        z = x @ w.reshape(m, d).T  # n x m
        delta = s * (np.maximum(z, 0.0) @ a) - y
        g = s * a[:, None] * (((z >= 0.0) * delta[:, None]).T @ x)
        return g.ravel(), delta

    k = m * d
    if opt == "gf":
        def fun(t, state):
            return -grad(state)[0]
        y0 = w0.ravel()
    else:
        def fun(t, state):
            g = grad(state[:k])[0]
            v = state[k:]
            if opt == "hbf":
                acc = -b * v - g
            elif t > 0.0:
                acc = -(gamma / t) * v - g
            else:
                acc = -g / (1.0 + gamma)  # the limit of Nesterov's ODE at rest
            return np.concatenate([v, acc])
        y0 = np.concatenate([w0.ravel(), np.zeros(k)])

    start = time.perf_counter()
    t_eval = np.linspace(0.0, t_end, samples) if samples > 1 else None
    sol = solve_ivp(fun, (0.0, t_end), y0, method="RK45", rtol=rtol, atol=atol, t_eval=t_eval)
    losses = [0.5 * float(r @ r) for r in (grad(sol.y[:k, i])[1] for i in range(sol.y.shape[1]))
              ] if t_eval is not None else []
    wall = time.perf_counter() - start
    _, delta = grad(sol.y[:k, -1])
    print(json.dumps({"wall_seconds": wall, "evaluations": int(sol.nfev),
                      "final_loss": 0.5 * float(delta @ delta), "status": int(sol.status),
                      "samples": len(losses)}))


if __name__ == "__main__":
    main()
