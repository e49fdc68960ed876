//! The problem a study works on: data (from --data or synthetic), the network (from --init
//! or the seed), the kernels H(0) and Hinf with their extreme eigenvalues, held-out points and
//! the discrete step.

use nalgebra::DMatrix;

use crate::error::InputError;
use crate::io;
use crate::model::{Data, InitialNetwork, Model};
use crate::study::config::{KernelChoice, RunConfig};
use crate::{model::relu2::arccos::hinf, theory::spectrum::extreme_eigenvalues};

/// The problem a run works on: data, network, kernels and their spectra.
#[derive(Clone, Debug)]
pub struct Setup {
    pub model: Model,
    pub w0: DMatrix<f64>,
    pub hinf: DMatrix<f64>,
    pub h0: DMatrix<f64>,
    pub lambda0: f64,
    pub h0_extremes: (f64, f64),
    pub hinf_extremes: (f64, f64),
    /// Held-out points (--test-n, --test), if any.
    pub test: Option<Data>,
    /// The discrete step: --eta, or 1/lambda_max(H(0)) with --eta auto.
    pub eta: f64,
    pub warnings: Vec<String>,
}

/// Build the problem: data from --data or synthetic, network from --init or the seed.
pub fn setup(cfg: &RunConfig) -> Result<Setup, InputError> {
    cfg.validate()?;
    let mut warnings = Vec::new();
    let mut data = match &cfg.data {
        Some(path) => io::read_data(path)?,
        None => Data::synthetic(cfg.n, cfg.d, cfg.seed),
    };
    let off_sphere = data.max_norm_deviation();
    if off_sphere > 1e-6 {
        if cfg.normalize {
            data = data.normalized().map_err(|e| InputError::File {
                path: cfg.data.clone().unwrap_or_default(),
                msg: e.to_string(),
            })?;
        } else {
            warnings.push(format!(
                "inputs are not on the unit sphere (largest ||x_i| - 1| = {off_sphere:.3e}); the theory assumes they are, --normalize projects them"
            ));
        }
    }
    let net = match &cfg.init {
        Some(path) => {
            let net = io::read_init(path)?;
            if net.w.ncols() != data.d() {
                return Err(InputError::Dimension {
                    option: "init",
                    path: path.clone(),
                    found: net.w.ncols(),
                    expected: data.d(),
                });
            }
            net
        }
        None => InitialNetwork::init(cfg.m, data.d(), cfg.seed),
    };
    if let Some(b) = cfg.friction.filter(|b| *b < 0.0) {
        warnings.push(format!(
            "--friction {b} is negative: the flow gains energy and may diverge"
        ));
    }
    let model = Model::new(data, net.a);
    let hinf = hinf(model.data());
    let h0 = model.gram(&net.w.as_view());
    let hinf_extremes = extreme_eigenvalues(&hinf);
    let h0_extremes = extreme_eigenvalues(&h0);
    let lambda0 = cfg.lambda0.unwrap_or(hinf_extremes.0);
    if lambda0 <= 1e-12 {
        warnings.push(format!(
            "lambda0 = lambda_min(Hinf) = {lambda0:.3e} is not positive (repeated or parallel inputs?); bounds that divide by it are infinite"
        ));
    }
    let test = match (&cfg.test, cfg.test_n) {
        (Some(path), _) => {
            let test = io::read_data(path)?;
            if test.d() != model.d() {
                return Err(InputError::Dimension {
                    option: "test",
                    path: path.clone(),
                    found: test.d(),
                    expected: model.d(),
                });
            }
            Some(if cfg.normalize {
                test.normalized().map_err(|e| InputError::File {
                    path: path.clone(),
                    msg: e.to_string(),
                })?
            } else {
                test
            })
        }
        (None, 0) => None,
        (None, k) => Some(Data::synthetic(
            k,
            model.d(),
            cfg.seed ^ 0x7E57_7E57_7E57_7E57,
        )),
    };
    let eta = if cfg.eta_auto {
        1.0 / h0_extremes.1
    } else {
        cfg.eta
    };
    Ok(Setup {
        model,
        w0: net.w,
        hinf,
        h0,
        lambda0,
        h0_extremes,
        hinf_extremes,
        test,
        eta,
        warnings,
    })
}

impl Setup {
    /// The fixed kernel of error space and its (lambda_min, lambda_max).
    pub fn error_kernel(&self, kernel: KernelChoice) -> (&DMatrix<f64>, (f64, f64)) {
        match kernel {
            KernelChoice::H0 => (&self.h0, self.h0_extremes),
            KernelChoice::Hinf => (&self.hinf, self.hinf_extremes),
        }
    }
}
