//! Output directories: who owns a file, and whole runs.
//!
//! The contract (README, "Bad input and your files"):
//! 1. **A record of every run.** A run writes `DIR/manifest.json` naming every file it wrote
//!    (with its size and an FNV-1a 64-bit sum of its bytes), the writer, version, pid and time;
//!    every subdirectory that holds files gets its own manifest (so that `compare`'s `DIR/gf` is
//!    a run directory of its own). A later run replaces or removes only files a record names
//!    *with the content the record gives*. Any other file under one of the run's output names
//!    stops the run before it computes ([`OutDirError::Foreign`], [`OutDirError::Changed`]);
//!    `force` lets the run replace it. Nothing ever deletes a file that no record names.
//! 2. **Inputs are sacred.** A path that is one of the run's inputs (same canonical path, or on
//!    unix the same file by device and inode) is never written, replaced or removed: writing
//!    one is refused before computing ([`OutDirError::Input`]); an input that an old record
//!    names but the new run does not write is kept and no longer recorded.
//! 3. **Checked first.** [`Claim::replace`] and [`Claim::update`] look at DIR before anything is
//!    computed: a file, a dangling symbolic link, a directory we cannot write (the lock file is
//!    created there), foreign files, inputs.
//! 4. **Whole runs.** The new run's files are written into a private staging directory; the
//!    switch from the old run to the new one happens in [`Claim::commit`].
//! 5. **One run at a time.** `DIR/.ntkdyn.lock` holds an exclusive `flock` of the claiming
//!    process for the whole run, with its pid inside; a second claim fails at once naming that
//!    pid ([`OutDirError::Busy`]). The kernel drops the lock when its process dies (SIGKILL
//!    included), so a stale lock file of a dead pid is simply taken over.
//!
//! ## Why DIR holds exactly one run, whenever the process is killed
//! *Directory switch* (Linux, DIR holds only recorded files, no input inside, DIR not the working
//! directory, its parent on the same file system): the new files, their manifests, a marker
//! file `.ntkdyn-new` and a locked `.ntkdyn.lock` are written and synced in the sibling
//! `PARENT/.NAME.ntkdyn-new-PID`; then one `renameat2(RENAME_EXCHANGE)` swaps it with DIR.
//! Before that call DIR is the old directory untouched; after it, DIR is the new directory
//! whole (the kernel exchanges both names in one step: there is no moment without DIR). What
//! remains is cleanup: the marker inside DIR, and the old tree at the sibling's name. A later
//! claim recognises the sibling by its name: with the marker it is a staging directory that
//! never switched (removed whole); without it, it is an old run (its recorded files removed,
//! any other file kept and reported).
//!
//! *Journaled switch* (everywhere else, e.g. `--out .` beside the user's own files): the new
//! files are staged and synced, then `DIR/.ntkdyn-journal.json` is written whole (temporary
//! name, sync, rename): it names the files to install and the old files to remove, with the
//! sums of what is expected at each name, and holds the new manifest. The journal is the
//! commit point: killed before it, DIR holds the old run (the staging directory is a
//! leftover); killed after it, the journal is a record naming everything in flight, and the
//! next claim on DIR (every run and `plot` claims before reading) rolls it forward: each step
//! (move a staged file in, remove an old one whose sum matches, write the manifest, drop the
//! journal) can be repeated. Between the kill and that claim, DIR can show files of both runs
//! beside the journal; no reader of ntkdyn looks at DIR without completing the switch first.
//!
//! Leftovers (staging directories, `.NAME.tmpPID` files of `io::write_atomic`, a stale marker)
//! belong to dead processes once the lock is held, and the claim removes them.
//!
//! Tests can abort the process at each step of the switch: the environment variable
//! [`CRASH_ENV`] (`NTKDYN_TEST_CRASH_AT`) set to one of [`CRASH_POINTS`] makes
//! [`Claim::commit`] call `std::process::abort()` there (test-only; nothing else reads it).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The record of a run in every directory it wrote to.
pub const MANIFEST: &str = "manifest.json";
/// The lock file (an exclusive flock, the holder's pid inside).
pub const LOCK: &str = ".ntkdyn.lock";
/// The journal of a switch in progress (journaled switch only).
pub const JOURNAL: &str = ".ntkdyn-journal.json";
/// The marker of a staging directory (directory switch).
pub const MARKER: &str = ".ntkdyn-new";
/// Staging inside DIR: `DIR/.ntkdyn-staging-PID`.
const INSIDE_STAGING: &str = ".ntkdyn-staging-";
/// Staging beside DIR: `PARENT/.NAME.ntkdyn-new-PID`.
const SIBLING_INFIX: &str = ".ntkdyn-new-";
/// The writer named in manifests.
const WRITER: &str = "ntkdyn";

/// Test hook: the name of a point in [`CRASH_POINTS`] at which `commit` aborts the process.
pub const CRASH_ENV: &str = "NTKDYN_TEST_CRASH_AT";

/// Every point of the commit at which [`CRASH_ENV`] can abort, in the order they are reached
/// (a switch passes the points of its kind only).
pub const CRASH_POINTS: [&str; 10] = [
    // Both kinds.
    "staging", // after the first staged file
    "staged",  // every file staged and synced, nothing switched
    // Directory switch.
    "exchanged", // DIR is the new run; the marker and the old tree remain
    "unmarked",  // the marker is gone; the old tree remains
    // Journaled switch.
    "journaled",  // the journal is written, nothing moved
    "installing", // the first new file moved in
    "installed",  // every new file moved in, old ones not yet removed
    "removed",    // old files removed, the manifest still the old one
    "manifested", // the new manifest written, the journal still there
    // Both kinds.
    "finished", // everything switched, the lock file not yet released
];

fn crash_point(point: &str) {
    if std::env::var_os(CRASH_ENV).is_some_and(|v| v == point) {
        std::process::abort();
    }
}

/// What can go wrong with an output directory; each prints one line (the caller adds
/// `error: `).
#[derive(Debug, thiserror::Error)]
pub enum OutDirError {
    /// A file under an output name that no record names.
    #[error("{} was not written by ntkdyn; choose another --out or pass --force", path.display())]
    Foreign { path: PathBuf },
    /// A recorded file whose content is no longer what ntkdyn wrote.
    #[error(
        "{} was changed since ntkdyn wrote it; choose another --out or pass --force",
        path.display()
    )]
    Changed { path: PathBuf },
    /// An output path that is one of the run's inputs.
    #[error(
        "{} is the input {option}; a run never writes over its inputs: choose another --out",
        path.display()
    )]
    Input { path: PathBuf, option: String },
    /// --out is a file (or another non-directory).
    #[error("--out {}: exists and is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    /// --out is a symbolic link to nothing.
    #[error(
        "--out {}: is a symbolic link to {}, which does not exist",
        path.display(),
        target.display()
    )]
    DanglingSymlink { path: PathBuf, target: PathBuf },
    /// --out cannot be created or written.
    #[error("--out {}: cannot write there ({msg})", path.display())]
    NotWritable { path: PathBuf, msg: String },
    /// Another run holds the directory.
    #[error(
        "{} is in use by another ntkdyn run ({}); wait for it to finish or choose another --out",
        path.display(),
        pid.map_or("pid unknown".to_string(), |p| format!("pid {p}"))
    )]
    Busy { path: PathBuf, pid: Option<u32> },
    /// An output name that is not a plain relative path, or a reserved one.
    #[error("'{name}' is not an output name ({why})")]
    BadName { name: String, why: &'static str },
    /// A file was put that the claim did not name.
    #[error("'{name}' was not claimed as an output of this run")]
    Unclaimed { name: String },
    /// A directory stands where a file is to be written.
    #[error("{} is a directory, not a file ntkdyn can replace", path.display())]
    IsADirectory { path: PathBuf },
    /// An I/O error on a path.
    #[error("{}: {msg}", path.display())]
    Io { path: PathBuf, msg: String },
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> OutDirError + '_ {
    move |e| OutDirError::Io {
        path: path.to_path_buf(),
        msg: e.to_string(),
    }
}

/// A relative output name: plain UTF-8 components joined by '/', e.g. `weight.csv` or
/// `gf/loss.svg` (ntkdyn's own names; DIR itself may be any path).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OutputName(String);

impl OutputName {
    /// A name the caller may claim: no empty, `.` or `..` components, no backslash or NUL, and
    /// none of this module's own names (`manifest.json`, `.ntkdyn*`).
    pub fn new(name: &str) -> Result<OutputName, OutDirError> {
        let parsed = OutputName::parse(name)?;
        if parsed.file_name() == MANIFEST {
            return Err(OutDirError::BadName {
                name: name.into(),
                why: "manifest.json is written by the output directory itself",
            });
        }
        Ok(parsed)
    }

    /// Any well-formed name, the manifests' included (names read back from a record).
    fn parse(name: &str) -> Result<OutputName, OutDirError> {
        let bad = |why| OutDirError::BadName {
            name: name.into(),
            why,
        };
        if name.is_empty() {
            return Err(bad("empty"));
        }
        if name.contains('\\') || name.contains('\0') {
            return Err(bad("backslash or NUL"));
        }
        for part in name.split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return Err(bad("components must be plain names"));
            }
            if part.starts_with(".ntkdyn") {
                return Err(bad("names starting with .ntkdyn are reserved"));
            }
        }
        Ok(OutputName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a relative path.
    pub fn to_path(&self) -> PathBuf {
        self.0.split('/').collect()
    }

    fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The directories above the file, outermost first: `a/b/c` gives `a`, `a/b`.
    fn ancestors(&self) -> Vec<String> {
        let parts: Vec<&str> = self.0.split('/').collect();
        (1..parts.len()).map(|k| parts[..k].join("/")).collect()
    }

    /// The directory holding the file ("" at the top).
    fn dir(&self) -> &str {
        self.0.rsplit_once('/').map_or("", |(d, _)| d)
    }

    fn in_dir(dir: &str, name: &str) -> OutputName {
        if dir.is_empty() {
            OutputName(name.to_string())
        } else {
            OutputName(format!("{dir}/{name}"))
        }
    }
}

impl std::fmt::Display for OutputName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Size and FNV-1a 64-bit sum of a file's bytes: enough to tell ntkdyn's file from one the
/// user put or edited under the same name (not a defence against forgery).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sum {
    pub bytes: u64,
    #[serde(with = "hex_u64")]
    pub fnv1a64: u64,
}

mod hex_u64 {
    pub fn serialize<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:016x}"))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        u64::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
    }
}

impl Sum {
    pub fn of(bytes: &[u8]) -> Sum {
        let mut h = Fnv::new();
        h.update(bytes);
        Sum {
            bytes: bytes.len() as u64,
            fnv1a64: h.0,
        }
    }

    /// The sum of a regular file (not following a symbolic link); None if it is not one.
    fn of_file(path: &Path) -> Option<Sum> {
        let meta = fs::symlink_metadata(path).ok()?;
        if !meta.is_file() {
            return None;
        }
        let mut file = File::open(path).ok()?;
        let mut h = Fnv::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let k = file.read(&mut buf).ok()?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            total += k as u64;
        }
        Some(Sum {
            bytes: total,
            fnv1a64: h.0,
        })
    }
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// One file a manifest names.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub name: String,
    #[serde(flatten)]
    pub sum: Sum,
}

/// `manifest.json`: what one run wrote into one directory (names relative to it).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub writer: String,
    pub version: String,
    pub pid: u32,
    /// UTC, RFC 3339.
    pub time: String,
    pub files: Vec<Entry>,
}

impl Manifest {
    fn new(files: Vec<Entry>) -> Manifest {
        Manifest {
            writer: WRITER.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            time: utc_now(),
            files,
        }
    }

    /// The manifest at `path` if it is one of ntkdyn's (any other content is the user's).
    pub fn read(path: &Path) -> Option<Manifest> {
        let meta = fs::symlink_metadata(path).ok()?;
        if !meta.is_file() || meta.len() > 64 << 20 {
            return None;
        }
        let m: Manifest = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
        let names_ok = m.files.iter().all(|e| OutputName::parse(&e.name).is_ok());
        (m.writer == WRITER && names_ok).then_some(m)
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text.into_bytes()
    }
}

/// RFC 3339 UTC time of now (civil date from days since 1970, H. Hinnant's algorithm).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc(secs)
}

fn format_utc(secs: u64) -> String {
    let (days, rest) = ((secs / 86400) as i64, secs % 86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// How the new run's files relate to the old ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A whole run: DIR afterwards holds the new files only (the old run's other files go).
    Replace,
    /// Some files of a run are written again (`plot`): the other recorded files stay.
    Update,
}

/// An input of the run: its option (e.g. `--data`) and path.
#[derive(Clone, Debug)]
struct Input {
    option: String,
    path: PathBuf,
    canonical: Option<PathBuf>,
    id: Option<(u64, u64)>,
}

impl Input {
    fn new(option: &str, path: &Path) -> Input {
        Input {
            option: option.into(),
            path: path.to_path_buf(),
            canonical: fs::canonicalize(path).ok(),
            id: file_id(path),
        }
    }

    /// Whether `path` (which may not exist yet) is this input.
    fn is(&self, path: &Path) -> bool {
        if let (Some(a), Some(b)) = (self.id, file_id(path)) {
            if a == b {
                return true;
            }
        }
        match (&self.canonical, canonical_of_maybe_missing(path)) {
            (Some(a), Some(b)) => *a == b,
            _ => false,
        }
    }
}

/// (device, inode) of the file a path leads to (following links), on unix.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The canonical path of `path`, or of its parent joined with its name when it does not exist.
fn canonical_of_maybe_missing(path: &Path) -> Option<PathBuf> {
    fs::canonicalize(path).ok().or_else(|| {
        Some(
            fs::canonicalize(path.parent()?)
                .ok()?
                .join(path.file_name()?),
        )
    })
}

fn same_device(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (fs::metadata(a), fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

/// The lock of a directory: an exclusive flock on `DIR/.ntkdyn.lock`, released (and the file
/// removed) when dropped.
#[derive(Debug)]
struct Lock {
    path: PathBuf,
    file: Option<File>,
}

impl Lock {
    /// Take the lock of `dir` (shown as `shown` in errors) or fail at once naming its holder.
    fn take(dir: &Path, shown: &Path) -> Result<Lock, OutDirError> {
        let path = dir.join(LOCK);
        // A lock file removed between our open and our flock (its holder finished) is not the
        // lock any more: open again.
        for _ in 0..100 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| OutDirError::NotWritable {
                    path: shown.to_path_buf(),
                    msg: e.to_string(),
                })?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(OutDirError::Busy {
                        path: shown.to_path_buf(),
                        pid: holder_pid(&mut file),
                    })
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(OutDirError::NotWritable {
                        path: shown.to_path_buf(),
                        msg: format!("cannot lock {}: {e}", LOCK),
                    })
                }
            }
            if !same_file(&file, &path) {
                continue;
            }
            let pid = format!("{}\n", std::process::id());
            file.set_len(0)
                .and_then(|_| file.write_all(pid.as_bytes()))
                .and_then(|_| file.sync_all())
                .map_err(|e| OutDirError::NotWritable {
                    path: shown.to_path_buf(),
                    msg: e.to_string(),
                })?;
            return Ok(Lock {
                path,
                file: Some(file),
            });
        }
        Err(OutDirError::Busy {
            path: shown.to_path_buf(),
            pid: None,
        })
    }

    /// A lock on a file of a staging directory (no contention: the directory is ours).
    fn on_new_file(path: PathBuf) -> std::io::Result<Lock> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.try_lock().map_err(std::io::Error::other)?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
        file.sync_all()?;
        Ok(Lock {
            path,
            file: Some(file),
        })
    }

    /// Remove the lock file while still holding it, then let it go (a process that opened the
    /// file before sees, after its flock, that the path no longer leads to it).
    fn release(&mut self) {
        if let Some(file) = self.file.take() {
            if same_file(&file, &self.path) {
                let _ = fs::remove_file(&self.path);
            }
            drop(file);
        }
    }

    /// Forget the file without removing it (it moved away with its directory).
    fn forget(&mut self) {
        self.file.take();
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.release();
    }
}

fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::symlink_metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

/// The pid written in a lock file (its holder may not have written it yet: wait a little).
fn holder_pid(file: &mut File) -> Option<u32> {
    for _ in 0..20 {
        let mut text = String::new();
        use std::io::Seek;
        if file.rewind().is_ok() && file.read_to_string(&mut text).is_ok() {
            if let Ok(pid) = text.trim().parse() {
                return Some(pid);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    None
}

/// What the records of DIR say: for each name, every sum a manifest gives it.
#[derive(Debug, Default)]
struct Records {
    sums: BTreeMap<OutputName, Vec<Sum>>,
    /// Subdirectories (relative) that hold a valid manifest of their own.
    manifests: BTreeSet<String>,
    /// Whether DIR/manifest.json exists but is not ntkdyn's.
    foreign_top: bool,
}

impl Records {
    /// Read DIR/manifest.json and the manifests of the subdirectories it or the claim names.
    fn read(dir: &Path, claimed: &BTreeSet<OutputName>) -> Records {
        let mut records = Records::default();
        let mut dirs: BTreeSet<String> = BTreeSet::new();
        dirs.insert(String::new());
        for n in claimed {
            dirs.extend(n.ancestors());
        }
        let top = dir.join(MANIFEST);
        match Manifest::read(&top) {
            Some(m) => {
                for e in &m.files {
                    if let Ok(n) = OutputName::parse(&e.name) {
                        dirs.extend(n.ancestors());
                    }
                }
                records.add("", &m);
            }
            None => records.foreign_top = fs::symlink_metadata(&top).is_ok(),
        }
        for sub in dirs.iter().filter(|d| !d.is_empty()) {
            let path = dir.join(OutputName(sub.clone()).to_path()).join(MANIFEST);
            if let Some(m) = Manifest::read(&path) {
                records.add(sub, &m);
                records.manifests.insert(sub.clone());
            }
        }
        records
    }

    fn add(&mut self, prefix: &str, m: &Manifest) {
        for e in &m.files {
            let name = OutputName::in_dir(prefix, &e.name);
            self.sums.entry(name).or_default().push(e.sum);
        }
    }

    /// Whether `name` in DIR is a file a record names with its present content.
    fn vouches(&self, name: &OutputName, present: Option<Sum>) -> bool {
        match (self.sums.get(name), present) {
            (Some(sums), Some(s)) => sums.contains(&s),
            _ => false,
        }
    }

    /// The directories some record puts files in.
    fn dirs(&self) -> BTreeSet<String> {
        self.sums.keys().flat_map(|n| n.ancestors()).collect()
    }
}

/// Where the new files are staged.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Staging {
    /// `PARENT/.NAME.ntkdyn-new-PID`: the directory switch is possible.
    Sibling(PathBuf),
    /// `DIR/.ntkdyn-staging-PID`.
    Inside(PathBuf),
}

impl Staging {
    fn path(&self) -> &Path {
        match self {
            Staging::Sibling(p) | Staging::Inside(p) => p,
        }
    }
}

/// The journal of a journaled switch (see the module doc).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Journal {
    pid: u32,
    /// "sibling" or "inside".
    staging: String,
    /// Files to move in from staging, with what may stand at their name before (None: nothing,
    /// or anything when `forced`).
    install: Vec<Install>,
    /// Old recorded files to remove, each only if it still has this content.
    remove: Vec<Entry>,
    /// The new top manifest, written last.
    manifest: Manifest,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Install {
    name: String,
    new: Sum,
    old: Option<Sum>,
    forced: bool,
}

/// A claimed output directory: locked, checked, with leftovers of earlier runs cleaned up.
/// Put the run's files with [`Claim::put`], then [`Claim::commit`]; dropped without a commit,
/// it leaves DIR as it found it.
#[derive(Debug)]
pub struct Claim {
    /// DIR as the user gave it (for messages and returned paths).
    shown: PathBuf,
    /// DIR canonical (a symbolic link to a directory is followed: files go where it leads).
    real: PathBuf,
    mode: Mode,
    force: bool,
    claimed: BTreeSet<OutputName>,
    inputs: Vec<Input>,
    lock: Lock,
    staging: Staging,
    staging_made: bool,
    put: BTreeMap<OutputName, Sum>,
    notes: Vec<String>,
    /// Names whose present file is not recorded and `force` allowed to replace.
    forced: BTreeSet<OutputName>,
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// The files written, as paths under DIR as the user gave it, in name order.
    pub written: Vec<PathBuf>,
    /// Whether DIR was switched as a whole directory (else file by file, with a journal).
    pub whole_directory: bool,
    /// Things the user may want to know (files kept, leftovers removed).
    pub notes: Vec<String>,
}

impl Claim {
    /// Claim `dir` for a whole run that may write `names` (relative, e.g. `weight.csv`,
    /// `gf/loss.svg`), reading `inputs` (option, path). Checks everything before the caller
    /// computes: see the module doc.
    pub fn replace(
        dir: &Path,
        names: &[&str],
        inputs: &[(&str, &Path)],
        force: bool,
    ) -> Result<Claim, OutDirError> {
        Claim::new(dir, names, inputs, force, Mode::Replace)
    }

    /// Claim `dir` to write some files of the run it holds again (`plot`): the other recorded
    /// files stay and stay recorded.
    pub fn update(
        dir: &Path,
        names: &[&str],
        inputs: &[(&str, &Path)],
        force: bool,
    ) -> Result<Claim, OutDirError> {
        Claim::new(dir, names, inputs, force, Mode::Update)
    }

    fn new(
        dir: &Path,
        names: &[&str],
        inputs: &[(&str, &Path)],
        force: bool,
        mode: Mode,
    ) -> Result<Claim, OutDirError> {
        let mut claimed = BTreeSet::new();
        for n in names {
            claimed.insert(OutputName::new(n)?);
        }
        let real = prepare(dir)?;
        let inputs: Vec<Input> = inputs.iter().map(|(o, p)| Input::new(o, p)).collect();
        check_ancestor_locks(&real, dir)?;
        let lock = Lock::take(&real, dir)?;
        let mut claim = Claim {
            shown: dir.to_path_buf(),
            staging: Staging::Inside(real.join(format!("{INSIDE_STAGING}{}", std::process::id()))),
            real,
            mode,
            force,
            claimed,
            inputs,
            lock,
            staging_made: false,
            put: BTreeMap::new(),
            notes: Vec::new(),
            forced: BTreeSet::new(),
        };
        claim.recover()?;
        claim.check()?;
        claim.staging = claim.choose_staging();
        Ok(claim)
    }

    /// Notes of the claim so far (an interrupted switch finished, leftovers removed).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// DIR as given.
    pub fn dir(&self) -> &Path {
        &self.shown
    }

    /// Every name the claim covers, the manifests included.
    fn claimed_with_manifests(&self) -> BTreeSet<OutputName> {
        let mut all = self.claimed.clone();
        all.insert(OutputName(MANIFEST.into()));
        for n in &self.claimed {
            for d in n.ancestors() {
                all.insert(OutputName::in_dir(&d, MANIFEST));
            }
        }
        all
    }

    fn shown_path(&self, name: &OutputName) -> PathBuf {
        self.shown.join(name.to_path())
    }

    fn real_path(&self, name: &OutputName) -> PathBuf {
        self.real.join(name.to_path())
    }

    /// The checks before computing: a claimed name holding a file no record vouches for, an
    /// input, or a directory.
    fn check(&mut self) -> Result<(), OutDirError> {
        let records = Records::read(&self.real, &self.claimed);
        for name in self.claimed_with_manifests() {
            let real = self.real_path(&name);
            if let Some(input) = self.inputs.iter().find(|i| i.is(&real)) {
                return Err(OutDirError::Input {
                    path: self.shown_path(&name),
                    option: format!("{} {}", input.option, input.path.display()),
                });
            }
            let Ok(meta) = fs::symlink_metadata(&real) else {
                continue;
            };
            if meta.is_dir() {
                return Err(OutDirError::IsADirectory {
                    path: self.shown_path(&name),
                });
            }
            let ours = if name.file_name() == MANIFEST {
                Manifest::read(&real).is_some()
            } else {
                records.vouches(&name, Sum::of_file(&real))
            };
            if ours {
                continue;
            }
            if !self.force {
                return Err(if records.sums.contains_key(&name) {
                    OutDirError::Changed {
                        path: self.shown_path(&name),
                    }
                } else {
                    OutDirError::Foreign {
                        path: self.shown_path(&name),
                    }
                });
            }
            self.forced.insert(name);
        }
        // The directories the names need must be directories (or absent), and not held by a
        // run of their own (`plot DIR/gf` while `compare` writes DIR).
        for name in &self.claimed {
            for d in name.ancestors() {
                let p = self.real.join(OutputName(d.clone()).to_path());
                if let Ok(mut file) = File::open(p.join(LOCK)) {
                    if let Err(fs::TryLockError::WouldBlock) = file.try_lock_shared() {
                        return Err(OutDirError::Busy {
                            path: self.shown.join(OutputName(d.clone()).to_path()),
                            pid: holder_pid(&mut file),
                        });
                    }
                }
                if let Ok(meta) = fs::symlink_metadata(&p) {
                    if !meta.is_dir() {
                        return Err(OutDirError::NotADirectory {
                            path: self.shown.join(OutputName(d).to_path()),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The sibling staging directory when the directory switch may be possible (Linux, the
    /// parent writable and on DIR's device, no input inside DIR, DIR not our working
    /// directory); staging inside DIR otherwise.
    fn choose_staging(&self) -> Staging {
        let inside = Staging::Inside(
            self.real
                .join(format!("{INSIDE_STAGING}{}", std::process::id())),
        );
        if !cfg!(target_os = "linux") || self.mode == Mode::Update {
            return inside;
        }
        let (Some(parent), Some(name)) = (self.real.parent(), self.real.file_name()) else {
            return inside;
        };
        if !same_device(parent, &self.real) {
            return inside;
        }
        if self.inputs.iter().any(|i| {
            i.canonical
                .as_ref()
                .is_some_and(|c| c.starts_with(&self.real))
        }) {
            return inside;
        }
        if std::env::current_dir()
            .ok()
            .and_then(|d| fs::canonicalize(d).ok())
            .is_some_and(|cwd| cwd.starts_with(&self.real))
        {
            return inside;
        }
        Staging::Sibling(parent.join(sibling_name(name, std::process::id())))
    }

    fn ensure_staging(&mut self) -> Result<(), OutDirError> {
        if self.staging_made {
            return Ok(());
        }
        let path = self.staging.path().to_path_buf();
        let made = fs::create_dir(&path).and_then(|_| {
            if matches!(self.staging, Staging::Sibling(_)) {
                File::create(path.join(MARKER))?.sync_all()
            } else {
                Ok(())
            }
        });
        match made {
            Ok(()) => {}
            Err(_) if matches!(self.staging, Staging::Sibling(_)) => {
                // The parent refuses (read-only, full): stage inside DIR instead.
                let _ = fs::remove_dir_all(&path);
                self.staging = Staging::Inside(
                    self.real
                        .join(format!("{INSIDE_STAGING}{}", std::process::id())),
                );
                fs::create_dir(self.staging.path()).map_err(io_err(self.staging.path()))?;
            }
            Err(e) => return Err(io_err(&path)(e)),
        }
        self.staging_made = true;
        Ok(())
    }

    /// Write the file `name` of the new run (staged: DIR changes only at [`Claim::commit`]).
    /// Returns its final path under DIR as given.
    pub fn put(&mut self, name: &str, bytes: &[u8]) -> Result<PathBuf, OutDirError> {
        let name = OutputName::new(name)?;
        if !self.claimed.contains(&name) {
            return Err(OutDirError::Unclaimed {
                name: name.0.clone(),
            });
        }
        self.ensure_staging()?;
        let path = self.staging.path().join(name.to_path());
        write_synced(&path, bytes)?;
        if self.put.is_empty() {
            crash_point("staging");
        }
        self.put.insert(name.clone(), Sum::of(bytes));
        Ok(self.shown_path(&name))
    }

    /// The manifests of the new run: one per directory that holds files, keyed by directory.
    fn new_manifests(&self, records: &Records) -> BTreeMap<String, Manifest> {
        let mut entries: BTreeMap<OutputName, Sum> = self.put.clone();
        if self.mode == Mode::Update {
            // The recorded files not written again stay recorded (if they still are what the
            // record says).
            for (name, sums) in &records.sums {
                if entries.contains_key(name) || name.file_name() == MANIFEST {
                    continue;
                }
                if let Some(s) = Sum::of_file(&self.real_path(name)) {
                    if sums.contains(&s) {
                        entries.insert(name.clone(), s);
                    }
                }
            }
        }
        let mut dirs: BTreeSet<String> = BTreeSet::new();
        dirs.insert(String::new());
        for n in entries.keys() {
            dirs.extend(n.ancestors());
        }
        let mut manifests: BTreeMap<String, Manifest> = BTreeMap::new();
        for d in dirs.iter().rev() {
            let prefix = if d.is_empty() {
                String::new()
            } else {
                format!("{d}/")
            };
            let mut files: Vec<Entry> = entries
                .iter()
                .filter_map(|(n, s)| {
                    n.as_str().strip_prefix(&prefix).map(|rest| Entry {
                        name: rest.to_string(),
                        sum: *s,
                    })
                })
                .collect();
            // Deeper manifests come first (reverse order), so their sums are known here.
            for (sub, m) in &manifests {
                if let Some(rest) = sub.strip_prefix(&prefix).filter(|r| !r.is_empty()) {
                    files.push(Entry {
                        name: format!("{rest}/{MANIFEST}"),
                        sum: Sum::of(&m.to_bytes()),
                    });
                }
            }
            files.sort_by(|a, b| a.name.cmp(&b.name));
            manifests.insert(d.clone(), Manifest::new(files));
        }
        manifests
    }

    /// Switch DIR from the old run to the new one (see the module doc) and release it.
    pub fn commit(mut self) -> Result<Committed, OutDirError> {
        // A file may have appeared under an output name while the run computed.
        self.check()?;
        self.ensure_staging()?;
        let records = Records::read(&self.real, &self.claimed);
        let manifests = self.new_manifests(&records);
        // Nested manifests are staged like the files; the top one is staged for the
        // directory switch and written from the journal in the other.
        for (d, m) in &manifests {
            if d.is_empty() {
                continue;
            }
            let name = OutputName::in_dir(d, MANIFEST);
            write_synced(&self.staging.path().join(name.to_path()), &m.to_bytes())?;
        }
        let top = manifests
            .get("")
            .cloned()
            .unwrap_or_else(|| Manifest::new(vec![]));
        let staged: Vec<OutputName> = manifests
            .keys()
            .filter(|d| !d.is_empty())
            .map(|d| OutputName::in_dir(d, MANIFEST))
            .chain(self.put.keys().cloned())
            .collect();
        let removals = self.removals(&records, &staged);
        let whole = matches!(self.staging, Staging::Sibling(_))
            && self.only_ours(&records)
            && removals.1.is_empty();
        let written: Vec<PathBuf> = self.put.keys().map(|n| self.shown_path(n)).collect();
        let mut notes = std::mem::take(&mut self.notes);
        notes.extend(removals.1.iter().cloned());
        if whole {
            write_synced(&self.staging.path().join(MANIFEST), &top.to_bytes())?;
            crash_point("staged");
            match self.switch_directory() {
                Ok(more) => {
                    notes.extend(more);
                    crash_point("finished");
                    self.lock.release();
                    return Ok(Committed {
                        written,
                        whole_directory: true,
                        notes,
                    });
                }
                // The file system cannot exchange (EINVAL, ENOSYS...): switch file by file.
                Err(SwitchError::Unsupported) => {
                    let _ = fs::remove_file(self.staging.path().join(MANIFEST));
                    let _ = fs::remove_file(self.staging.path().join(LOCK));
                }
                Err(SwitchError::Failed(e)) => return Err(e),
            }
        } else {
            crash_point("staged");
        }
        if let Staging::Sibling(staging) = &self.staging {
            // The files must be able to move from the sibling into DIR (not so across mounts):
            // find out before the journal commits to it.
            // (A file of the staging directory goes in under the marker's name, which the
            // next claim removes from DIR if this one is killed meanwhile.)
            let (from, probe) = (staging.join(".ntkdyn-probe"), self.real.join(MARKER));
            File::create(&from)
                .and_then(|_| fs::rename(&from, &probe))
                .map_err(|e| OutDirError::Io {
                    path: self.shown.clone(),
                    msg: format!("cannot move the staged files in ({e})"),
                })?;
            let _ = fs::remove_file(&probe);
        }
        let journal = Journal {
            pid: std::process::id(),
            staging: match self.staging {
                Staging::Sibling(_) => "sibling".into(),
                Staging::Inside(_) => "inside".into(),
            },
            install: staged
                .iter()
                .map(|n| Install {
                    name: n.0.clone(),
                    new: Sum::of_file(&self.staging.path().join(n.to_path())).unwrap_or(Sum {
                        bytes: 0,
                        fnv1a64: 0,
                    }),
                    old: Sum::of_file(&self.real_path(n)),
                    forced: self.forced.contains(n),
                })
                .collect(),
            remove: removals.0,
            manifest: top,
        };
        let journal_path = self.real.join(JOURNAL);
        write_atomic_synced(
            &journal_path,
            &serde_json::to_vec_pretty(&journal).unwrap_or_default(),
        )?;
        sync_dir(&self.real);
        // From here the staged files belong to the journal: an error below leaves them for
        // the next claim to finish the switch with.
        self.staging_made = false;
        crash_point("journaled");
        notes.extend(roll_forward(&self.real, &self.shown, &journal, true)?);
        crash_point("finished");
        self.lock.release();
        Ok(Committed {
            written,
            whole_directory: false,
            notes,
        })
    }

    /// The old recorded files the new run does not write (Replace mode), each with the sum it
    /// must still have to be removed; and notes on recorded files kept (inputs, changed).
    fn removals(&self, records: &Records, staged: &[OutputName]) -> (Vec<Entry>, Vec<String>) {
        let mut remove = Vec::new();
        let mut kept = Vec::new();
        if self.mode == Mode::Update {
            return (remove, kept);
        }
        for (name, sums) in &records.sums {
            if staged.contains(name) || name.as_str() == MANIFEST {
                continue;
            }
            let real = self.real_path(name);
            let Some(present) = Sum::of_file(&real) else {
                continue;
            };
            if let Some(input) = self.inputs.iter().find(|i| i.is(&real)) {
                kept.push(format!(
                    "kept {} (the input {}); it is no longer recorded as ntkdyn's",
                    self.shown_path(name).display(),
                    input.option
                ));
            } else if name.file_name() == MANIFEST {
                // A manifest of a directory the new run no longer writes into.
                if Manifest::read(&real).is_some() {
                    remove.push(Entry {
                        name: name.0.clone(),
                        sum: present,
                    });
                }
            } else if sums.contains(&present) {
                remove.push(Entry {
                    name: name.0.clone(),
                    sum: present,
                });
            } else {
                kept.push(format!(
                    "kept {}: changed since ntkdyn wrote it",
                    self.shown_path(name).display()
                ));
            }
        }
        // Manifests of subdirectories the records know but the new run does not write.
        for sub in &records.manifests {
            let name = OutputName::in_dir(sub, MANIFEST);
            if staged.contains(&name) || remove.iter().any(|e| e.name == name.0) {
                continue;
            }
            if let Some(s) = Sum::of_file(&self.real_path(&name)) {
                remove.push(Entry {
                    name: name.0,
                    sum: s,
                });
            }
        }
        (remove, kept)
    }

    /// Whether DIR holds only what records vouch for (and our own lock): the condition of
    /// the directory switch. Only recorded subdirectories are entered; anything else is the
    /// user's and keeps DIR where it is.
    fn only_ours(&self, records: &Records) -> bool {
        if !self.forced.is_empty() {
            return false;
        }
        let dirs = records.dirs();
        fn walk(dir: &Path, prefix: &str, records: &Records, dirs: &BTreeSet<String>) -> bool {
            let Ok(entries) = fs::read_dir(dir) else {
                return false;
            };
            for entry in entries {
                let Ok(entry) = entry else { return false };
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    return false;
                };
                if prefix.is_empty() && name == LOCK {
                    continue;
                }
                let rel = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}/{name}")
                };
                let path = entry.path();
                let Ok(meta) = fs::symlink_metadata(&path) else {
                    return false;
                };
                if meta.is_dir() {
                    if !dirs.contains(&rel) || !walk(&path, &rel, records, dirs) {
                        return false;
                    }
                } else if !meta.is_file() {
                    return false;
                } else if name == MANIFEST {
                    if Manifest::read(&path).is_none() {
                        return false;
                    }
                } else {
                    let Ok(n) = OutputName::parse(&rel) else {
                        return false;
                    };
                    if !records.vouches(&n, Sum::of_file(&path)) {
                        return false;
                    }
                }
            }
            true
        }
        walk(&self.real, "", records, &dirs)
    }

    /// The directory switch: lock the staged directory's own lock file, give it DIR's
    /// permissions, exchange it with DIR, then clean up the old tree.
    fn switch_directory(&mut self) -> Result<Vec<String>, SwitchError> {
        let staging = self.staging.path().to_path_buf();
        let mut new_lock = Lock::on_new_file(staging.join(LOCK))
            .map_err(|e| SwitchError::Failed(io_err(&staging)(e)))?;
        if let Ok(meta) = fs::metadata(&self.real) {
            let _ = fs::set_permissions(&staging, meta.permissions());
        }
        sync_dir(&staging);
        if let Err(e) = exchange(&staging, &self.real) {
            drop(new_lock);
            return Err(match e.raw_os_error() {
                Some(code) if is_unsupported(code) => SwitchError::Unsupported,
                _ => SwitchError::Failed(io_err(&self.real)(e)),
            });
        }
        sync_dir(self.real.parent().unwrap_or(&self.real));
        crash_point("exchanged");
        // DIR is the new run; the old tree is at the staging name, holding the old lock file.
        let _ = fs::remove_file(self.real.join(MARKER));
        crash_point("unmarked");
        let old_lock = std::mem::replace(&mut self.lock, {
            new_lock.path = self.real.join(LOCK);
            new_lock
        });
        let mut old_lock = old_lock;
        old_lock.forget();
        let notes = remove_old_tree(&staging, &self.real, &self.shown);
        self.staging_made = false;
        Ok(notes)
    }

    /// Leftovers of earlier runs (the lock is ours, so their writers are gone): finish an
    /// interrupted journaled switch, remove staging directories, a stale marker, and
    /// temporary files of `io::write_atomic` under the claimed and recorded names.
    fn recover(&mut self) -> Result<(), OutDirError> {
        let journal_path = self.real.join(JOURNAL);
        if fs::symlink_metadata(&journal_path).is_ok() {
            let journal: Option<Journal> = fs::read(&journal_path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            match journal {
                Some(j) => {
                    let notes = roll_forward(&self.real, &self.shown, &j, false)?;
                    self.notes.push(format!(
                        "finished the switch of an interrupted run (pid {}) in {}",
                        j.pid,
                        self.shown.display()
                    ));
                    self.notes.extend(notes);
                }
                None => {
                    // A journal is written whole (temporary name, then rename); an unreadable
                    // one is not ours to act on.
                    self.notes.push(format!(
                        "{} is unreadable and was left alone",
                        self.shown.join(JOURNAL).display()
                    ));
                }
            }
        }
        let mut removed = Vec::new();
        // Staging inside DIR.
        if let Ok(entries) = fs::read_dir(&self.real) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                if pid_suffix(&name, OsStr::new(INSIDE_STAGING)).is_some()
                    && entry.file_type().is_ok_and(|t| t.is_dir())
                    && fs::remove_dir_all(entry.path()).is_ok()
                {
                    removed.push(entry.path());
                }
            }
        }
        // Staging or old trees beside DIR.
        if let (Some(parent), Some(dir_name)) = (self.real.parent(), self.real.file_name()) {
            let prefix = sibling_prefix(dir_name);
            if let Ok(entries) = fs::read_dir(parent) {
                for entry in entries.flatten() {
                    if pid_suffix(&entry.file_name(), &prefix).is_none()
                        || !entry.file_type().is_ok_and(|t| t.is_dir())
                    {
                        continue;
                    }
                    let path = entry.path();
                    if fs::symlink_metadata(path.join(MARKER)).is_ok() {
                        if fs::remove_dir_all(&path).is_ok() {
                            removed.push(path);
                        }
                    } else {
                        self.notes
                            .extend(remove_old_tree(&path, &self.real, &self.shown));
                        removed.push(path);
                    }
                }
            }
        }
        if fs::remove_file(self.real.join(MARKER)).is_ok() {
            removed.push(self.real.join(MARKER));
        }
        // Temporary files `.NAME.tmpPID` beside claimed or recorded names.
        let records = Records::read(&self.real, &self.claimed);
        let mut names: BTreeSet<OutputName> = self.claimed_with_manifests();
        names.extend(records.sums.keys().cloned());
        for name in &names {
            let path = self.real_path(name);
            let Some(parent) = path.parent() else {
                continue;
            };
            let prefix = format!(".{}.tmp", name.file_name());
            if let Ok(entries) = fs::read_dir(parent) {
                for entry in entries.flatten() {
                    if pid_suffix(&entry.file_name(), OsStr::new(&prefix)).is_some()
                        && entry.file_type().is_ok_and(|t| t.is_file())
                        && fs::remove_file(entry.path()).is_ok()
                    {
                        removed.push(entry.path());
                    }
                }
            }
        }
        if let Ok(entries) = fs::read_dir(&self.real) {
            let prefix = format!(".{JOURNAL}.tmp");
            for entry in entries.flatten() {
                if pid_suffix(&entry.file_name(), OsStr::new(&prefix)).is_some()
                    && fs::remove_file(entry.path()).is_ok()
                {
                    removed.push(entry.path());
                }
            }
        }
        if !removed.is_empty() {
            self.notes.push(format!(
                "removed {} leftover(s) of interrupted runs in {}",
                removed.len(),
                self.shown.display()
            ));
        }
        Ok(())
    }
}

/// Claim with `claim`, and while another run holds the directory, try again for up to `wait`
/// (for `sweep --shard`: shards of one sweep on a cluster finish at their own times into one
/// directory, each holding it only for the moment of its commit).
pub fn retry_while_busy(
    wait: std::time::Duration,
    claim: impl Fn() -> Result<Claim, OutDirError>,
) -> Result<Claim, OutDirError> {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match claim() {
            Err(OutDirError::Busy { .. }) if start.elapsed() + pause <= wait => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(500));
            }
            other => return other,
        }
    }
}

impl Drop for Claim {
    /// Without a commit: the staged files go, DIR stays as it was, the lock is released.
    fn drop(&mut self) {
        if self.staging_made {
            let _ = fs::remove_dir_all(self.staging.path());
        }
        self.lock.release();
    }
}

enum SwitchError {
    Unsupported,
    Failed(OutDirError),
}

fn is_unsupported(code: i32) -> bool {
    // EINVAL (the file system has no exchange), ENOSYS (old kernel), EXDEV, ENOTSUP/EOPNOTSUPP,
    // EPERM (some FUSE or network file systems).
    matches!(code, 22 | 38 | 18 | 95 | 1)
}

/// Exchange the names of two directories in one step (Linux renameat2, RENAME_EXCHANGE).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: `ca` and `cb` are NUL-terminated strings that live until after the call, which
    // only reads them; AT_FDCWD makes relative paths relative to the working directory (ours
    // are absolute); the call touches no memory of ours otherwise.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(38))
}

/// `.NAME.ntkdyn-new-` for DIR's name, byte for byte.
fn sibling_prefix(dir_name: &OsStr) -> OsString {
    let mut s = OsString::from(".");
    s.push(dir_name);
    s.push(SIBLING_INFIX);
    s
}

fn sibling_name(dir_name: &OsStr, pid: u32) -> OsString {
    let mut s = sibling_prefix(dir_name);
    s.push(pid.to_string());
    s
}

/// The pid after `prefix` in `name`, if `name` is exactly `prefix` and digits.
fn pid_suffix(name: &OsStr, prefix: &OsStr) -> Option<u32> {
    let rest = name
        .as_encoded_bytes()
        .strip_prefix(prefix.as_encoded_bytes())?;
    if rest.is_empty() || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(rest).ok()?.parse().ok()
}

/// Check --out before anything: a dangling link, a file, creatable; returns DIR canonical.
fn prepare(dir: &Path) -> Result<PathBuf, OutDirError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => match fs::metadata(dir) {
            Ok(target) if target.is_dir() => {}
            Ok(_) => {
                return Err(OutDirError::NotADirectory {
                    path: dir.to_path_buf(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(OutDirError::DanglingSymlink {
                    path: dir.to_path_buf(),
                    target: fs::read_link(dir).unwrap_or_default(),
                })
            }
            Err(e) => {
                return Err(OutDirError::NotWritable {
                    path: dir.to_path_buf(),
                    msg: e.to_string(),
                })
            }
        },
        Ok(meta) if !meta.is_dir() => {
            return Err(OutDirError::NotADirectory {
                path: dir.to_path_buf(),
            })
        }
        Ok(_) => {}
        Err(_) => fs::create_dir_all(dir).map_err(|e| OutDirError::NotWritable {
            path: dir.to_path_buf(),
            msg: e.to_string(),
        })?,
    }
    fs::canonicalize(dir).map_err(|e| OutDirError::NotWritable {
        path: dir.to_path_buf(),
        msg: e.to_string(),
    })
}

/// A run holding a directory above DIR (e.g. `compare` into DIR's parent) makes DIR busy.
fn check_ancestor_locks(real: &Path, shown: &Path) -> Result<(), OutDirError> {
    for ancestor in real.ancestors().skip(1) {
        let path = ancestor.join(LOCK);
        let Ok(mut file) = File::open(&path) else {
            continue;
        };
        match file.try_lock_shared() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(OutDirError::Busy {
                    path: shown.to_path_buf(),
                    pid: holder_pid(&mut file),
                })
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// Write `bytes` to `path` (creating its directories) and sync the file.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), OutDirError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let mut f = File::create(path).map_err(io_err(path))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(io_err(path))
}

/// Write `bytes` to `path` whole: a synced temporary file beside it, then a rename.
fn write_atomic_synced(path: &Path, bytes: &[u8]) -> Result<(), OutDirError> {
    let tmp = crate::io::temporary_path(path);
    write_synced(&tmp, bytes)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(path)(e)
    })
}

/// Sync a directory's entries (renames and creations in it); not every system can.
fn sync_dir(dir: &Path) {
    if let Ok(f) = File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Carry out (or finish) a journaled switch in `real`; every step can be repeated. Files that
/// stand at a name but are neither the old content the journal expects nor the new one (the
/// user put them there after an interruption) are left alone, with a note.
fn roll_forward(
    real: &Path,
    shown: &Path,
    journal: &Journal,
    crash_points: bool,
) -> Result<Vec<String>, OutDirError> {
    let point = |p: &str| {
        if crash_points {
            crash_point(p)
        }
    };
    let mut notes = Vec::new();
    let staging = if journal.staging == "sibling" {
        real.parent()
            .zip(real.file_name())
            .map(|(parent, name)| parent.join(sibling_name(name, journal.pid)))
    } else {
        Some(real.join(format!("{INSIDE_STAGING}{}", journal.pid)))
    };
    let mut kept: BTreeSet<String> = BTreeSet::new();
    let mut moved = 0;
    for item in &journal.install {
        let Ok(name) = OutputName::parse(&item.name) else {
            continue;
        };
        let target = real.join(name.to_path());
        let present = Sum::of_file(&target);
        let may_replace = match present {
            None => fs::symlink_metadata(&target).is_err() || item.forced,
            Some(s) => item.forced || Some(s) == item.old || s == item.new,
        };
        let Some(src) = staging.as_ref().map(|s| s.join(name.to_path())) else {
            continue;
        };
        if fs::symlink_metadata(&src).is_err() {
            continue; // moved in before the interruption
        }
        if !may_replace {
            kept.insert(item.name.clone());
            notes.push(format!(
                "kept {}: it is not the file this switch expected there",
                shown.join(name.to_path()).display()
            ));
            continue;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        fs::rename(&src, &target).map_err(io_err(&target))?;
        moved += 1;
        if moved == 1 {
            point("installing");
        }
    }
    sync_dir(real);
    point("installed");
    let mut emptied: BTreeSet<PathBuf> = BTreeSet::new();
    for entry in &journal.remove {
        let Ok(name) = OutputName::parse(&entry.name) else {
            continue;
        };
        let target = real.join(name.to_path());
        if Sum::of_file(&target) == Some(entry.sum)
            && fs::remove_file(&target).is_ok()
            && !name.dir().is_empty()
        {
            emptied.insert(real.join(OutputName(name.dir().into()).to_path()));
        }
    }
    // Directories left empty by the removals (deepest first); a directory with anything in it
    // stays.
    let mut emptied: Vec<PathBuf> = emptied.into_iter().collect();
    emptied.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for d in emptied {
        let _ = fs::remove_dir(&d);
    }
    point("removed");
    let mut manifest = journal.manifest.clone();
    manifest.files.retain(|e| !kept.contains(&e.name));
    write_atomic_synced(&real.join(MANIFEST), &manifest.to_bytes())?;
    sync_dir(real);
    point("manifested");
    let _ = fs::remove_file(real.join(JOURNAL));
    sync_dir(real);
    if let Some(s) = staging {
        let _ = fs::remove_dir_all(s);
    }
    Ok(notes)
}

/// Remove the old run's tree left beside DIR by a directory switch: its recorded files, its
/// manifests, lock and marker, then its empty directories. Anything else (a file the user put
/// into DIR while the run computed) is moved back into DIR when its name is free there, or
/// left where it is, with a note.
fn remove_old_tree(old: &Path, real: &Path, shown: &Path) -> Vec<String> {
    let mut notes = Vec::new();
    let records = Records::read(old, &BTreeSet::new());
    let dirs = records.dirs();
    fn walk(
        dir: &Path,
        prefix: &str,
        records: &Records,
        dirs: &BTreeSet<String>,
        left: &mut Vec<String>,
    ) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut manifest = None;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                left.push(prefix_join(prefix, &name.to_string_lossy()));
                continue;
            };
            let rel = prefix_join(prefix, name);
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() && dirs.contains(&rel) {
                walk(&path, &rel, records, dirs, left);
                if fs::remove_dir(&path).is_err() {
                    left.push(rel);
                }
                continue;
            }
            if meta.is_file() && name == MANIFEST && Manifest::read(&path).is_some() {
                manifest = Some((path, rel));
                continue;
            }
            let ours = meta.is_file()
                && (name == LOCK
                    || name == MARKER
                    || OutputName::parse(&rel)
                        .is_ok_and(|n| records.vouches(&n, Sum::of_file(&path))));
            if !(ours && fs::remove_file(&path).is_ok()) {
                left.push(rel);
            }
        }
        // The record goes last: interrupted here, the next claim still finds the rest
        // recorded.
        if let Some((path, rel)) = manifest {
            if fs::remove_file(&path).is_err() {
                left.push(rel);
            }
        }
    }
    fn prefix_join(prefix: &str, name: &str) -> String {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        }
    }
    let mut left = Vec::new();
    walk(old, "", &records, &dirs, &mut left);
    if fs::remove_dir(old).is_ok() {
        return notes;
    }
    // Move the user's entries back into DIR where their names are free (top level only).
    if let Ok(entries) = fs::read_dir(old) {
        for entry in entries.flatten() {
            let target = real.join(entry.file_name());
            if fs::symlink_metadata(&target).is_err() && fs::rename(entry.path(), &target).is_ok() {
                notes.push(format!(
                    "{} appeared while the run computed; it is still there",
                    shown.join(entry.file_name()).display()
                ));
            }
        }
    }
    if fs::remove_dir(old).is_err() {
        notes.push(format!(
            "kept {} (files ntkdyn did not write: {})",
            old.display(),
            left.join(", ")
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time_of_known_instants() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_795_960_218), "2026-11-29T13:50:18Z");
    }

    #[test]
    fn output_names_are_plain_relative_paths_outside_the_reserved_ones() {
        for good in ["weight.csv", "gf/loss.svg", "a/b/c.txt"] {
            assert_eq!(OutputName::new(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "/abs",
            "a//b",
            "../up",
            "a/./b",
            "manifest.json",
            "gf/manifest.json",
            ".ntkdyn.lock",
            "a\\b",
        ] {
            assert!(OutputName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn fnv1a_of_known_strings() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(Sum::of(b"").fnv1a64, 0xcbf2_9ce4_8422_2325);
        assert_eq!(Sum::of(b"a").fnv1a64, 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Sum::of(b"foobar").fnv1a64, 0x8594_4171_f739_67e8);
    }

    #[test]
    fn pid_suffix_takes_digits_only() {
        let p = OsStr::new(".x.tmp");
        assert_eq!(pid_suffix(OsStr::new(".x.tmp123"), p), Some(123));
        assert_eq!(pid_suffix(OsStr::new(".x.tmp"), p), None);
        assert_eq!(pid_suffix(OsStr::new(".x.tmp12a"), p), None);
        assert_eq!(pid_suffix(OsStr::new(".y.tmp12"), p), None);
    }
}
