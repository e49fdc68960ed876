//! Writes the benchmark's data and initial network (n = 100, d = 20, m = 400, seed 0, as
//! `ntkdyn gf --n 100 --d 20 --m 400` draws them) as DIR/data.csv and DIR/init.csv, for the
//! Python peers (bench/scipy_reference.py, bench/jax_reference.py) and `--data`/`--init`.
//!
//! ```text
//! cargo run --release --example reference_setting -- DIR [n d m seed]
//! ```

use ntkdyn::io;
use ntkdyn::model::{Data, InitialNetwork};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::PathBuf::from(args.first().map_or("reference-setting", String::as_str));
    let num =
        |k: usize, default: usize| args.get(k).and_then(|v| v.parse().ok()).unwrap_or(default);
    let (n, d, m, seed) = (num(1, 100), num(2, 20), num(3, 400), num(4, 0) as u64);
    std::fs::create_dir_all(&dir).expect("create the folder");
    let data = Data::synthetic(n, d, seed);
    let net = InitialNetwork::init(m, d, seed);
    std::fs::write(dir.join("data.csv"), io::data_csv(&data)).expect("write data.csv");
    std::fs::write(dir.join("init.csv"), io::init_csv(&net)).expect("write init.csv");
    println!("{}", dir.display());
}
