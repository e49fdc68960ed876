//! The problem a study works on: data (from --data or synthetic), the network (from --init
//! or the seed), the kernels H(0) and Hinf with their extreme eigenvalues, held-out points and
//! the discrete step.
//!
//! What files decide is checked as soon as it is known and before anything large is built:
//! the memory estimate once --data, --init and --test are read (their rows are small beside
//! the n x n kernels), the step of --eta auto once lambda_max(H(0)) is known. A lambda0 that
//! rounding leaves at or below zero (repeated or parallel inputs make Hinf singular) is taken
//! as 0, so that every bound dividing by it is infinite, never negative; the inputs to blame
//! are named, and a default that needs lambda0 > 0 (heavy ball's friction sqrt(2 lambda0)) is
//! refused before it can turn into NaN.

use nalgebra::DMatrix;
use std::path::Path;

use crate::error::InputError;
use crate::io;
use crate::model::{Data, InitialNetwork, Model};
use crate::study::config::{KernelChoice, RunConfig, SpaceChoice};
use crate::study::validate::{check_iterates, MemoryEstimate, Sizes};
use crate::{model::InfiniteWidth, theory::spectrum::extreme_eigenvalues};

/// lambda_min(Hinf) at or below this share of lambda_max(Hinf) is rounding of a singular
/// kernel: the eigen-solver's error is about n eps lambda_max (n = 5 parallel inputs gave
/// -1.1e-16 at lambda_max = 1.5), far below any lambda0 of distinct inputs (two unit inputs
/// at an angle theta give lambda_min ~ theta / (2 pi)).
pub const SINGULAR_SHARE: f64 = 1e-12;

/// The problem a run works on: data, network, kernels and their spectra.
#[derive(Clone, Debug)]
pub struct Setup {
    pub model: Model,
    /// The initial parameters: W0 (m x d), or [W0 | a0] (m x (d+1)) with `--train wa`.
    pub w0: DMatrix<f64>,
    pub hinf: DMatrix<f64>,
    pub h0: DMatrix<f64>,
    /// --lambda0, or lambda_min(Hinf); 0 when that is rounding of a singular Hinf.
    pub lambda0: f64,
    pub h0_extremes: (f64, f64),
    pub hinf_extremes: (f64, f64),
    /// Held-out points (--test-n, --test), if any.
    pub test: Option<Data>,
    /// The discrete step: --eta, or 1/lambda_max(H(0)) with --eta auto.
    pub eta: f64,
    pub warnings: Vec<String>,
    /// The configuration with the sizes the files gave: n and d of --data, m of --init
    /// (summary.json records these, not the defaults the files replaced).
    pub config: RunConfig,
    /// The output times of the flows (--samples and --times, or --times-file).
    pub times: Vec<f64>,
    // issue 20: the fixed kernel of error space decomposed once, and only where needed
    /// The eigen-decomposition of --kernel's matrix ([`Setup::kernel_spectrum`]): made here
    /// when error space runs on fewer than [`crate::theory::exact::KRYLOV_FROM`] points (its
    /// exact solution, its ODE's check and that kernel's extreme eigenvalues above come from
    /// it), else on first use. Larger error spaces solve on a Krylov space of the kernel
    /// instead (`study::executor::error_modes`) and need it only for held-out points.
    pub error_spectrum: std::sync::OnceLock<std::sync::Arc<crate::theory::spectrum::Spectrum>>,
    /// `--beta` from [`crate::theory::exact::KRYLOV_FROM`] points without the decomposition:
    /// (the kernel, lambda, the number of its eigenvalues below lambda), counted once on first use
    /// (`study::fixed_momentum::summary`, which summary.json, the figures and the terminal
    /// each ask for).
    pub eigenvalues_below: std::sync::OnceLock<(KernelChoice, f64, Option<usize>)>,
}

/// Build the problem: data from --data or synthetic, network from --init or the seed.
pub fn setup(cfg: &RunConfig) -> Result<Setup, InputError> {
    cfg.validate()?;
    let mut warnings = Vec::new();
    let label = io::LabelColumn::parse(cfg.label_column.as_deref());
    let mut data = match &cfg.data {
        Some(path) => {
            let file = io::read_data_file(path, &label)?;
            warnings.extend(file.notes);
            file.data
        }
        None => Data::synthetic(cfg.n, cfg.d, cfg.seed),
    };
    let times = cfg.sample_times()?;
    let off_sphere = data.max_norm_deviation();
    if off_sphere > 1e-6 {
        if cfg.normalize {
            data = data.normalized().map_err(|e| match &cfg.data {
                Some(path) => InputError::Csv {
                    path: path.clone(),
                    line: file_lines(path, 1 + e.row).get(e.row).copied().unwrap_or(0),
                    msg: "the input is zero and cannot be normalized".into(),
                },
                None => InputError::option("normalize", e.to_string()),
            })?;
        } else {
            warnings.push(format!(
                "inputs are not on the unit sphere (largest ||x_i| - 1| = {off_sphere:.3e}); the theory assumes they are, --normalize projects them"
            ));
        }
    }
    let net = match &cfg.init {
        Some(path) => {
            let net = io::read_init_for(path, cfg.train.output_layer())?;
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
    let config = RunConfig {
        n: data.n(),
        d: data.d(),
        m: net.m(),
        ..cfg.clone()
    };
    // Every size is known now (a --test file's rows are counted without keeping them):
    // check the whole estimate before the model and its kernels are built.
    let test_rows = match &cfg.test {
        Some(path) => io::data_shape(path, &label)?.0,
        None => cfg.test_n,
    };
    let sizes = Sizes {
        n: config.n,
        d: config.d,
        m: config.m,
        test: test_rows,
    };
    let eta = (!cfg.eta_auto).then_some(cfg.eta);
    MemoryEstimate::of(&config, sizes, eta).check(sizes)?;
    if let Some(b) = cfg.friction.filter(|b| *b < 0.0) {
        warnings.push(format!(
            "--friction {b} is negative: the flow gains energy and may diverge"
        ));
    }
    let model = Model::with_training(data, net.a, cfg.activation, cfg.train);
    // issue 17: with --train wa the parameters are [W | a] (Model::parameters).
    let w0 = model.parameters(&net.w);
    let hinf = model.infinite_width_kernel();
    let h0 = model.gram(&w0.as_view());
    // issue 20: error space needs its kernel's eigenvectors (below KRYLOV_FROM points); the
    // extremes come with them.
    let error_spectrum = std::sync::OnceLock::new();
    if matches!(cfg.space, SpaceChoice::Error | SpaceChoice::Both)
        && config.n < crate::theory::exact::KRYLOV_FROM
    {
        let h = match cfg.kernel {
            KernelChoice::H0 => &h0,
            KernelChoice::Hinf => &hinf,
        };
        let spectrum = crate::theory::spectrum::Spectrum::of(h);
        let _ = error_spectrum.set(std::sync::Arc::new(spectrum));
    }
    let extremes_of = |h: &DMatrix<f64>, choice: KernelChoice| match error_spectrum.get() {
        Some(s) if cfg.kernel == choice => s.extremes(),
        _ => kernel_extremes(h),
    };
    let hinf_extremes = extremes_of(&hinf, KernelChoice::Hinf);
    let h0_extremes = extremes_of(&h0, KernelChoice::H0);
    let lambda0 = match cfg.lambda0 {
        Some(l) => l,
        None if singular(hinf_extremes) => {
            let blame = singular_inputs(model.data(), cfg.data.as_deref());
            if depends_on_lambda0(cfg) {
                return Err(InputError::option(
                    "lambda0",
                    format!(
                        "lambda_min(Hinf) = {:.3e} is not positive ({blame}), and {}'s default friction sqrt(2 lambda0) needs lambda0 > 0; give --friction B or --lambda0 L, or remove the repeated inputs",
                        hinf_extremes.0,
                        cfg.optimizer.name()
                    ),
                ));
            }
            warnings.push(format!(
                "lambda0 = lambda_min(Hinf) = {:.3e} is not positive ({blame}); lambda0 is taken as 0 and bounds that divide by it are infinite",
                hinf_extremes.0
            ));
            0.0
        }
        None => hinf_extremes.0,
    };
    let test = match (&cfg.test, cfg.test_n) {
        (Some(path), _) => {
            let file = io::read_data_file(path, &label)?;
            // The training file's notes are said once (a --test that is the --data file).
            for note in file.notes {
                if !warnings.contains(&note) && !note.contains("labels are all 0 or 1") {
                    warnings.push(note);
                }
            }
            let test = file.data;
            if test.d() != model.d() {
                return Err(InputError::Dimension {
                    option: "test",
                    path: path.clone(),
                    found: test.d(),
                    expected: model.d(),
                });
            }
            Some(if cfg.normalize {
                test.normalized().map_err(|e| InputError::Csv {
                    path: path.clone(),
                    line: file_lines(path, 1 + e.row).get(e.row).copied().unwrap_or(0),
                    msg: "the input is zero and cannot be normalized".into(),
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
        auto_eta(&config, h0_extremes.1, sizes)?
    } else {
        cfg.eta
    };
    Ok(Setup {
        model,
        w0,
        hinf,
        h0,
        lambda0,
        h0_extremes,
        hinf_extremes,
        test,
        eta,
        warnings,
        config,
        times,
        error_spectrum,
        eigenvalues_below: std::sync::OnceLock::new(),
    })
}

/// issue 20: (lambda_min, lambda_max) of a kernel whose eigenvectors no one needs: from
/// [`crate::linalg::FAER_FROM`] rows by Lanczos on H and H^{-1}
/// ([`crate::linalg::spd_extreme_eigenvalues`]; at n = 2000 the full reduction was a quarter
/// of the error-space run's CPU), the full eigenvalue solve when that has no answer (H not
/// positive definite) and below (the default runs keep nalgebra's values bit for bit).
fn kernel_extremes(h: &DMatrix<f64>) -> (f64, f64) {
    if h.nrows() >= crate::linalg::FAER_FROM {
        if let Some(extremes) = crate::linalg::spd_extreme_eigenvalues(h) {
            return extremes;
        }
    }
    extreme_eigenvalues(h)
}

/// eta = 1/lambda_max(H(0)) of --eta auto, refused when it is not a finite step (H(0) = 0:
/// no unit is active on any input) or its twin needs more iterates or memory than allowed.
fn auto_eta(cfg: &RunConfig, lambda_max: f64, sizes: Sizes) -> Result<f64, InputError> {
    let eta = 1.0 / lambda_max;
    if !cfg.discrete {
        // No twin takes the step: it is only recorded.
        return Ok(eta);
    }
    if !(eta.is_finite() && eta > 0.0) {
        return Err(InputError::option(
            "eta",
            format!(
                "auto is 1/lambda_max(H(0)) but lambda_max(H(0)) = {lambda_max:.3e} (no hidden unit is active on any input?): there is no step to take; give --eta as a number or use --no-discrete"
            ),
        ));
    }
    check_iterates(cfg, eta, &format!("auto = 1/lambda_max(H(0)) = {eta:.3e}"))?;
    MemoryEstimate::of(cfg, sizes, Some(eta)).check(sizes)?;
    Ok(eta)
}

/// Whether lambda_min(Hinf) is rounding of a singular kernel ([`SINGULAR_SHARE`]).
fn singular((lo, hi): (f64, f64)) -> bool {
    lo.is_nan() || lo <= SINGULAR_SHARE * hi.max(0.0) || hi <= 0.0
}

/// Whether the optimizer's default schedule reads lambda0 (heavy ball without --friction):
/// its damping differs between two values of lambda0.
fn depends_on_lambda0(cfg: &RunConfig) -> bool {
    cfg.damping(1.0) != cfg.damping(2.0)
}

/// The inputs that make Hinf singular, named: groups of repeated or parallel rows and zero
/// rows, by file line with --data (rows counting from 1 otherwise), the first few of each.
fn singular_inputs(data: &Data, path: Option<&Path>) -> String {
    const SHOWN: usize = 4;
    let n = data.n();
    // Groups of parallel rows: each row joins the group of its first parallel partner.
    let mut group: Vec<usize> = (0..n).collect();
    for (i, j) in data.parallel_pairs() {
        let root = group[i];
        group[j] = root;
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for root in 0..n {
        let members: Vec<usize> = (0..n).filter(|&k| group[k] == root).collect();
        if members.len() > 1 {
            groups.push(members);
        }
    }
    let zeros: Vec<usize> = (0..n)
        .filter(|&i| data.x.row(i).iter().all(|v| *v == 0.0))
        .collect();
    let lines = path.map(|p| file_lines(p, n));
    let name = |i: usize| match &lines {
        Some(l) => l
            .get(i)
            .map_or(format!("row {}", i + 1), |line| line.to_string()),
        None => (i + 1).to_string(),
    };
    let list = |rows: &[usize]| {
        let mut names: Vec<String> = rows.iter().take(SHOWN).map(|&i| name(i)).collect();
        if rows.len() > SHOWN {
            names.push(format!("... ({} in all)", rows.len()));
        }
        names.join(", ")
    };
    let unit = match path {
        Some(p) => format!("{} lines", p.display()),
        None => "inputs (rows counting from 1)".to_string(),
    };
    let mut said: Vec<String> = groups
        .iter()
        .take(SHOWN)
        .map(|g| format!("{{{}}}", list(g)))
        .collect();
    if groups.len() > SHOWN {
        said.push(format!("and {} more groups", groups.len() - SHOWN));
    }
    let mut parts = Vec::new();
    if !said.is_empty() {
        parts.push(format!(
            "{unit} {} are repeated or parallel",
            said.join(", ")
        ));
    }
    if !zeros.is_empty() {
        parts.push(format!("{unit} {} are zero", list(&zeros)));
    }
    if parts.is_empty() {
        "no two inputs are parallel within 1e-12; the inputs are nearly dependent".to_string()
    } else {
        parts.join("; ")
    }
}

/// The file line of each of the first `rows` data rows of a CSV (empty if it cannot be read
/// again: the caller then names rows counting from 1).
fn file_lines(path: &Path, rows: usize) -> Vec<u64> {
    io::read_data_file(path, &io::LabelColumn::Last)
        .map(|f| f.lines.into_iter().take(rows).collect())
        .unwrap_or_default()
}

impl Setup {
    /// The eigen-decomposition of the kernel `choice` (H(0) or Hinf): --kernel's is made
    /// once and kept (`error_spectrum`), the other one's made at each call.
    pub fn kernel_spectrum(
        &self,
        choice: KernelChoice,
    ) -> std::sync::Arc<crate::theory::spectrum::Spectrum> {
        let of = || {
            std::sync::Arc::new(crate::theory::spectrum::Spectrum::of(match choice {
                KernelChoice::H0 => &self.h0,
                KernelChoice::Hinf => &self.hinf,
            }))
        };
        if choice == self.config.kernel {
            std::sync::Arc::clone(self.error_spectrum.get_or_init(of))
        } else {
            of()
        }
    }

    /// The fixed kernel of error space and its (lambda_min, lambda_max).
    pub fn error_kernel(&self, kernel: KernelChoice) -> (&DMatrix<f64>, (f64, f64)) {
        match kernel {
            KernelChoice::H0 => (&self.h0, self.h0_extremes),
            KernelChoice::Hinf => (&self.hinf, self.hinf_extremes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::Optimizer;

    #[test]
    fn a_singular_hinf_is_told_by_its_share_of_lambda_max() {
        assert!(singular((-1.1e-16, 1.5)));
        assert!(singular((1e-17, 1.5)));
        assert!(singular((0.0, 0.0)));
        assert!(!singular((0.08, 1.5)));
        // Scale does not matter: inputs at 1e-10 give a kernel at 1e-20.
        assert!(!singular((0.08e-20, 1.5e-20)));
    }

    #[test]
    fn only_heavy_balls_default_friction_reads_lambda0() {
        assert!(depends_on_lambda0(&RunConfig::defaults(Optimizer::Hbf)));
        let with_friction = RunConfig {
            friction: Some(0.5),
            ..RunConfig::defaults(Optimizer::Hbf)
        };
        assert!(!depends_on_lambda0(&with_friction));
        assert!(!depends_on_lambda0(&RunConfig::defaults(Optimizer::Gf)));
        assert!(!depends_on_lambda0(&RunConfig::defaults(Optimizer::Nag)));
    }

    #[test]
    fn repeated_inputs_are_named_by_row_in_groups() {
        // n = 5, d = 1: every input is +1 or -1, so rows of one sign repeat each other.
        let data = Data::synthetic(5, 1, 0);
        let text = singular_inputs(&data, None);
        let signs: Vec<bool> = (0..5).map(|i| data.x[(i, 0)] > 0.0).collect();
        let plus: Vec<String> = (0..5)
            .filter(|&i| signs[i])
            .map(|i| (i + 1).to_string())
            .collect();
        assert!(text.contains(&format!("{{{}}}", plus.join(", "))), "{text}");
        assert!(text.contains("rows counting from 1"), "{text}");
    }
}
