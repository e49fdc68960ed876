//! Dormand-Prince 5(4) coefficients (Hairer, Norsett, Wanner, Table II.5.2), for the stage
//! evaluators of the held-step driver.

/// Nodes c_s.
pub const C: [f64; 7] = [0.0, 0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0];
/// Stage coefficients a_sl; the last row is b, the fifth-order weights (first same as last).
pub const A: [[f64; 6]; 7] = [
    [0.0; 6],
    [0.2, 0.0, 0.0, 0.0, 0.0, 0.0],
    [3.0 / 40.0, 9.0 / 40.0, 0.0, 0.0, 0.0, 0.0],
    [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0, 0.0, 0.0, 0.0],
    [
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
        0.0,
        0.0,
    ],
    [
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
        0.0,
    ],
    [
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
/// b (5th order) minus b-hat (4th order): the embedded error estimate.
pub const E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];
/// Dormand-Prince's continuous extension (Hairer, Norsett, Wanner I, II.6, and their code
/// DOPRI5's `contd5`), fourth order: for a step from y0 to y1 of size h with stages k_1 .. k_7
/// (k_7 = f(t + h, y1)) and theta in [0, 1],
///
/// ```text
/// y(t + theta h) = y0 + theta (r1 + (1 - theta) (r2 + theta (r3 + (1 - theta) r4))),
/// r1 = y1 - y0,  r2 = h k_1 - r1,  r3 = r1 - h k_7 - r2,  r4 = h sum_l D_l k_l.
/// ```
pub const D: [f64; 7] = [
    -12715105075.0 / 11282082432.0,
    0.0,
    87487479700.0 / 32700410799.0,
    -10690763975.0 / 1880347072.0,
    701980252875.0 / 199316789632.0,
    -1453857185.0 / 822651844.0,
    69997945.0 / 29380423.0,
];
