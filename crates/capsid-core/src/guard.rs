//! The output guard: what every capsid command does before it writes anything.
//!
//! * **Inputs are never outputs.** [`refuse_overwriting_inputs`] compares canonical paths and
//!   (device, inode) of every output with every input, including inputs that lie inside an output
//!   folder; outputs that do not exist yet are compared through their canonical parent folder.
//! * **Existing results are kept** unless the user says `--force` (or `--resume` where a command
//!   can continue a run): [`refuse_existing`].
//! * **One writer per output.** [`OutputLock`] creates `.capsid-lock-NAME` next to the output with
//!   `create_new`, recording host and pid. A second writer gets an error naming the holder; a lock
//!   left by a dead process *of this host* is swept; another host's locks are never touched (a
//!   cluster file system is shared, its processes are not visible from here). Outputs in one
//!   folder lock separately, so tasks writing different tomograms into one folder run side by side.
//! * **Skip what is complete** ([`is_complete`], [`mark_complete`]): an output file is complete when
//!   it exists (outputs are written to a temporary file and renamed), an output folder when it
//!   holds the [`COMPLETE_MARKER`] file.
//! * **Leftovers.** Temporary files are named `.capsid-tmp-HOST.PID.RANDOM` ([`temp_file_in`]);
//!   [`cleanup_this_process`] (called on Ctrl-C / SIGTERM) removes this process's temporary files
//!   and locks and the empty folders it created; [`sweep_stale`] removes those of dead processes of
//!   this host at the next run into a folder.
//!
//! [`OutputGuard`] bundles all of this for one command: `OutputGuard::new(outputs, inputs, force)`.

use crate::error::CoreError;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Name prefix of every file capsid keeps next to outputs (temporary files, locks, markers).
pub const HIDDEN_PREFIX: &str = ".capsid-";
/// Name prefix of temporary files (followed by `HOST.PID.`).
pub const TEMP_PREFIX: &str = ".capsid-tmp-";
/// Name prefix of lock files (followed by the output's file name).
pub const LOCK_PREFIX: &str = ".capsid-lock-";
/// The file that marks an output folder as complete (see [`mark_complete`]).
pub const COMPLETE_MARKER: &str = ".capsid-complete";

static TEMP_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static LOCKS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static CREATED_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn invalid(msg: impl Into<String>) -> CoreError {
    CoreError::Invalid(msg.into())
}

fn io_err(path: &Path, source: std::io::Error) -> CoreError {
    CoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn lock_list<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Host and process identity

/// This machine's host name (`localhost` when the system does not say).
pub fn host_name() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let mut name = read_host_name().unwrap_or_default();
        // Names go into file names: keep them tame.
        name.retain(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if name.is_empty() {
            "localhost".to_string()
        } else {
            name
        }
    })
}

#[cfg(unix)]
fn read_host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[cfg(not(unix))]
fn read_host_name() -> Option<String> {
    std::env::var("COMPUTERNAME").ok()
}

/// True unless process `pid` of this host is known to be gone (unknown counts as alive, so that
/// nothing of a running process is ever swept).
pub fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(p) = libc::pid_t::try_from(pid) else {
            return true;
        };
        if p <= 0 {
            return true;
        }
        // SAFETY: signal 0 only checks whether the process exists; nothing is sent.
        let rc = unsafe { libc::kill(p, 0) };
        if rc == 0 {
            return true;
        }
        std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

// ---------------------------------------------------------------------------------------------
// Temporary files

/// The prefix of this process's temporary files: `.capsid-tmp-HOST.PID.`.
pub fn temp_prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| format!("{TEMP_PREFIX}{}.{}.", host_name(), std::process::id()))
}

/// Host and pid of a capsid temporary file name, if it is one of the current form.
fn temp_owner(name: &str) -> Option<(&str, u32)> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    let mut parts = rest.rsplitn(3, '.');
    let _random = parts.next()?;
    let pid = parts.next()?.parse().ok()?;
    let host = parts.next()?;
    Some((host, pid))
}

/// Creates a temporary output file in `dir` (named `.capsid-tmp-HOST.PID.RANDOM`, mode 0644 on
/// Unix) and remembers `dir`, so that [`cleanup_this_process`] can remove the file if the process
/// is interrupted before it is renamed into place.
pub fn temp_file_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    if shutting_down() {
        return Err(std::io::Error::other("capsid is stopping (interrupted)"));
    }
    {
        let mut dirs = lock_list(&TEMP_DIRS);
        if !dirs.iter().any(|d| d == dir) {
            dirs.push(dir.to_path_buf());
        }
    }
    crate::fsutil::temp_file_builder().tempfile_in(dir)
}

static SHUTTING_DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn shutting_down() -> bool {
    SHUTTING_DOWN.load(std::sync::atomic::Ordering::SeqCst)
}

/// Remembers that this process created `dir`, so that [`cleanup_this_process`] removes it again
/// if it is still empty when the process is interrupted.
pub fn register_created_dir(dir: &Path) {
    lock_list(&CREATED_DIRS).push(dir.to_path_buf());
}

/// Creates `dir` (and its parents) and returns the folders that did not exist before, outermost
/// first; each is registered with [`register_created_dir`]. Pass the list to
/// [`remove_created_dirs`] when the command fails, so a failure leaves no empty folder behind.
pub fn create_output_dir(dir: &Path) -> Result<Vec<PathBuf>, CoreError> {
    let mut missing = Vec::new();
    let mut p = Some(dir);
    while let Some(d) = p {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        p = d.parent();
    }
    missing.reverse();
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    for d in &missing {
        register_created_dir(d);
    }
    Ok(missing)
}

/// Removes the folders of `created` (as returned by [`create_output_dir`]) that are empty, innermost
/// first. Folders holding anything are kept.
pub fn remove_created_dirs(created: &[PathBuf]) {
    for d in created.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

/// Removes this process's temporary files (in every folder it wrote into), its lock files, and the
/// folders it created that are still empty. Finished outputs are kept. Called on Ctrl-C and
/// SIGTERM; after it, creating a temporary file fails.
pub fn cleanup_this_process() {
    SHUTTING_DOWN.store(true, std::sync::atomic::Ordering::SeqCst);
    let prefix = temp_prefix();
    let dirs = lock_list(&TEMP_DIRS).clone();
    for d in dirs {
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(prefix) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    for l in lock_list(&LOCKS).drain(..) {
        let _ = std::fs::remove_file(l);
    }
    let created = lock_list(&CREATED_DIRS).clone();
    for d in created.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

/// Removes, in `dir`, the temporary files and lock files left by dead capsid processes of this
/// host. Files of other hosts, of live processes and of unknown owners are kept. Returns how many
/// files were removed.
pub fn sweep_stale(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let owner = if name.starts_with(TEMP_PREFIX) {
            temp_owner(&name).map(|(h, p)| (h.to_string(), p))
        } else if name.starts_with(LOCK_PREFIX) {
            read_lock_owner(&e.path())
        } else {
            None
        };
        if let Some((host, pid)) = owner {
            if host == host_name()
                && pid != std::process::id()
                && !process_alive(pid)
                && std::fs::remove_file(e.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

// ---------------------------------------------------------------------------------------------
// Inputs vs outputs

/// The canonical form of `p`; for a path that does not exist yet, its deepest existing ancestor
/// canonicalised with the rest appended (`..` and `.` resolved lexically there).
pub fn canonical_or_parent(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    // Find the deepest existing ancestor.
    let mut tail: Vec<std::ffi::OsString> = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(c) = cur.canonicalize() {
            let mut out = c;
            for part in tail.iter().rev() {
                out.push(part);
            }
            return normalize(&out);
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name.to_os_string());
                cur = parent;
            }
            _ => return normalize(&abs),
        }
    }
}

/// Resolves `.` and `..` lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(unix)]
fn file_id(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_p: &Path) -> Option<(u64, u64)> {
    None
}

/// True when `a` and `b` name the same file or folder (same canonical path, or same device and
/// inode, which also catches hard links).
pub fn same_file(a: &Path, b: &Path) -> bool {
    if let (Some(x), Some(y)) = (file_id(a), file_id(b)) {
        if x == y {
            return true;
        }
    }
    canonical_or_parent(a) == canonical_or_parent(b)
}

/// Refuses outputs that would overwrite an input: an output that is an input (same canonical
/// path, or same device and inode), or an output folder that holds an input. Inputs that do not
/// exist are skipped (their reader reports them). The error names both paths.
pub fn refuse_overwriting_inputs(outputs: &[&Path], inputs: &[&Path]) -> Result<(), CoreError> {
    for out in outputs {
        let out_c = canonical_or_parent(out);
        let out_id = file_id(out);
        for inp in inputs {
            if !inp.exists() {
                continue;
            }
            let in_c = canonical_or_parent(inp);
            let same = in_c == out_c || (out_id.is_some() && out_id == file_id(inp));
            if same {
                return Err(invalid(format!(
                    "{}: the output would overwrite the input {}; choose another output name",
                    out.display(),
                    inp.display()
                )));
            }
            if in_c.starts_with(&out_c) {
                return Err(invalid(format!(
                    "{}: this output folder holds the input {}; choose another output folder (inputs are never overwritten)",
                    out.display(),
                    inp.display()
                )));
            }
        }
    }
    Ok(())
}

/// Refuses two outputs of one command that are the same file.
pub fn refuse_duplicate_outputs(outputs: &[&Path]) -> Result<(), CoreError> {
    for (i, a) in outputs.iter().enumerate() {
        for b in &outputs[i + 1..] {
            if same_file(a, b) {
                return Err(invalid(format!(
                    "{}: given as two different outputs ({}); choose distinct names",
                    a.display(),
                    b.display()
                )));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Existing results and completeness

/// True when `p` exists as a file, or as a folder holding anything other than capsid's hidden
/// temporary, lock and marker files.
pub fn exists_with_content(p: &Path) -> bool {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .any(|e| !e.file_name().to_string_lossy().starts_with(HIDDEN_PREFIX))
            })
            .unwrap_or(true),
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Refuses to replace an existing result (a file, or a folder with content) unless `force`.
/// `flag` names the option that allows it (e.g. `--force`, or `--force or --resume`).
pub fn refuse_existing(output: &Path, force: bool, flag: &str) -> Result<(), CoreError> {
    if !force && exists_with_content(output) {
        return Err(invalid(format!(
            "{}: already exists; capsid does not replace results unless you say {flag}",
            output.display()
        )));
    }
    Ok(())
}

/// True when the output `p` is complete: a file that exists (capsid writes files under a
/// temporary name and renames them when finished, so an existing file is a finished one), or a
/// folder holding [`COMPLETE_MARKER`] (written by [`mark_complete`] when the command that fills it
/// finished). Many-tomogram and cluster runs skip complete outputs.
pub fn is_complete(p: &Path) -> bool {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => p.join(COMPLETE_MARKER).is_file(),
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Marks the output folder `dir` as complete (see [`is_complete`]); call it last.
pub fn mark_complete(dir: &Path) -> Result<(), CoreError> {
    let p = dir.join(COMPLETE_MARKER);
    crate::fsutil::write_atomically(&p, |w| writeln!(w, "capsid {} finished", crate::VERSION))
}

/// Before an explicit replacement (`--force` on a particle list, new picks into a copick project,
/// edited picks saved over the file a viewer opened): copies the existing file `path` to
/// `path.bak` (replacing an older backup) and returns the backup's path; `None` when `path` does
/// not exist. The new content is then written atomically (temporary file + rename) as usual.
pub fn keep_backup(path: &Path) -> Result<Option<PathBuf>, CoreError> {
    if !path.is_file() {
        return Ok(None);
    }
    let mut bak = path.as_os_str().to_owned();
    bak.push(".bak");
    let bak = PathBuf::from(bak);
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    crate::fsutil::write_atomically(&bak, |w| w.write_all(&bytes))?;
    Ok(Some(bak))
}

// ---------------------------------------------------------------------------------------------
// Locks

/// A lock on one output: the file `.capsid-lock-NAME` next to it, holding `host=…` and `pid=…`.
/// Removed when dropped (and by [`cleanup_this_process`] on Ctrl-C / SIGTERM).
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
}

/// The lock file of output `p`.
pub fn lock_path(p: &Path) -> PathBuf {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    dir.join(format!("{LOCK_PREFIX}{name}"))
}

fn read_lock_owner(lock: &Path) -> Option<(String, u32)> {
    let text = std::fs::read_to_string(lock).ok()?;
    let mut host = None;
    let mut pid = None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("host=") {
            host = Some(h.trim().to_string());
        } else if let Some(p) = line.strip_prefix("pid=") {
            pid = p.trim().parse().ok();
        }
    }
    Some((host?, pid?))
}

impl OutputLock {
    /// Locks output `p` for this process. Fails with a message naming the holder when another
    /// live process (or any process of another host) holds it; a lock of a dead process of this
    /// host is removed first. The folder that will hold the lock must exist (it is created if
    /// missing, and registered so an interrupted run removes it again when empty).
    pub fn acquire(p: &Path) -> Result<Self, CoreError> {
        let lock = lock_path(p);
        if let Some(dir) = lock.parent() {
            if !dir.exists() {
                create_output_dir(dir)?;
            }
        }
        for _attempt in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&lock) {
                Ok(mut f) => {
                    lock_list(&LOCKS).push(lock.clone());
                    let text = format!(
                        "host={}\npid={}\noutput={}\n",
                        host_name(),
                        std::process::id(),
                        p.display()
                    );
                    f.write_all(text.as_bytes()).map_err(|e| io_err(&lock, e))?;
                    return Ok(Self { path: lock });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    match read_lock_owner(&lock) {
                        Some((host, pid))
                            if host == host_name()
                                && pid != std::process::id()
                                && !process_alive(pid) =>
                        {
                            // A dead process of this host: sweep and retry.
                            let _ = std::fs::remove_file(&lock);
                            continue;
                        }
                        Some((host, pid)) => {
                            return Err(invalid(format!(
                                "{}: being written by process {pid} on host {host} (lock file {}); \
                                 wait for it, or remove the lock file if that process is gone",
                                p.display(),
                                lock.display()
                            )))
                        }
                        None => {
                            return Err(invalid(format!(
                                "{}: being written by another process (lock file {}); \
                                 wait for it, or remove the lock file if that process is gone",
                                p.display(),
                                lock.display()
                            )))
                        }
                    }
                }
                Err(e) => return Err(io_err(&lock, e)),
            }
        }
        Err(invalid(format!(
            "{}: could not take the lock file {}",
            p.display(),
            lock.display()
        )))
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        lock_list(&LOCKS).retain(|l| l != &self.path);
    }
}

// ---------------------------------------------------------------------------------------------
// The guard

/// What a command holds while it writes its outputs: one [`OutputLock`] per output. Dropping it
/// releases the locks.
#[derive(Debug)]
pub struct OutputGuard {
    locks: Vec<OutputLock>,
    /// Folders created to hold the locks (removed again on drop if still empty).
    created: Vec<PathBuf>,
}

impl Drop for OutputGuard {
    fn drop(&mut self) {
        self.locks.clear();
        remove_created_dirs(&self.created);
    }
}

impl OutputGuard {
    /// The checks every command runs before writing:
    /// 1. no two outputs are the same file ([`refuse_duplicate_outputs`]);
    /// 2. no output is, or (as a folder) holds, an input ([`refuse_overwriting_inputs`]);
    /// 3. one lock per output ([`OutputLock`]), after stale temporary files and locks of dead
    ///    processes of this host are swept from the folders involved ([`sweep_stale`]);
    /// 4. no existing result is replaced unless `force` ([`refuse_existing`], `--force`).
    pub fn new(outputs: &[&Path], inputs: &[&Path], force: bool) -> Result<Self, CoreError> {
        Self::with_flag(outputs, inputs, force, "--force")
    }

    /// Like [`OutputGuard::new`], naming `flag` as what allows replacing an existing result.
    pub fn with_flag(
        outputs: &[&Path],
        inputs: &[&Path],
        force: bool,
        flag: &str,
    ) -> Result<Self, CoreError> {
        refuse_duplicate_outputs(outputs)?;
        refuse_overwriting_inputs(outputs, inputs)?;
        let mut guard = Self {
            locks: Vec::with_capacity(outputs.len()),
            created: Vec::new(),
        };
        for out in outputs {
            let parent = lock_path(out).parent().map(Path::to_path_buf);
            if let Some(parent) = &parent {
                if !parent.exists() {
                    guard.created.extend(create_output_dir(parent)?);
                }
                sweep_stale(parent);
            }
            if out.is_dir() {
                sweep_stale(out);
            }
            guard.locks.push(OutputLock::acquire(out)?);
            refuse_existing(out, force, flag)?;
        }
        Ok(guard)
    }

    /// Adds a lock on one more output (e.g. a file inside an output folder), with the same checks.
    pub fn add(&mut self, output: &Path, inputs: &[&Path], force: bool) -> Result<(), CoreError> {
        refuse_overwriting_inputs(&[output], inputs)?;
        self.locks.push(OutputLock::acquire(output)?);
        refuse_existing(output, force, "--force")
    }

    /// The lock files held.
    pub fn lock_files(&self) -> Vec<&Path> {
        self.locks.iter().map(OutputLock::path).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Physical and naming checks at the edges

/// Refuses a voxel size that is not a positive finite number of Å on every axis. `what` names
/// the file or option it comes from.
pub fn check_voxel_size(what: &str, voxel_size_a: [f32; 3]) -> Result<(), CoreError> {
    if voxel_size_a.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return Err(invalid(format!(
            "{what}: voxel size {} x {} x {} Å is not a positive number; set it in the header \
             (e.g. `capsid prep` or IMOD's alterheader) or give it as an option",
            voxel_size_a[0], voxel_size_a[1], voxel_size_a[2]
        )));
    }
    Ok(())
}

/// Refuses two maps used together whose shapes differ, or whose voxel sizes differ by more than
/// 0.1 % on any axis (a voxel size of 0, "unknown", matches anything). Names both files.
pub fn check_same_grid(
    a: &Path,
    a_shape_zyx: [usize; 3],
    a_voxel_a: [f32; 3],
    b: &Path,
    b_shape_zyx: [usize; 3],
    b_voxel_a: [f32; 3],
) -> Result<(), CoreError> {
    if a_shape_zyx != b_shape_zyx {
        let xyz = |s: [usize; 3]| format!("{} x {} x {}", s[2], s[1], s[0]);
        return Err(invalid(format!(
            "{} ({} voxels, x × y × z) and {} ({}) differ in shape; maps used together must share one grid",
            a.display(),
            xyz(a_shape_zyx),
            b.display(),
            xyz(b_shape_zyx)
        )));
    }
    for k in 0..3 {
        let (x, y) = (a_voxel_a[k] as f64, b_voxel_a[k] as f64);
        if x > 0.0 && y > 0.0 && ((x - y).abs() > 1e-3 * x.max(y)) {
            return Err(invalid(format!(
                "{} (voxel size {x} Å) and {} ({y} Å) differ in voxel size by more than 0.1 %; \
                 maps used together must share one grid",
                a.display(),
                b.display()
            )));
        }
    }
    Ok(())
}

/// Refuses a name that becomes part of a file name (a class name, a tomogram name) when it holds
/// a path separator, is `.`/`..` or empty, or holds control characters.
pub fn check_file_name_part(what: &str, name: &str) -> Result<(), CoreError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains("..")
        || name.contains('/')
        || name.contains('\\')
        || name.chars().any(char::is_control);
    if bad {
        return Err(invalid(format!(
            "{what} '{}' cannot be part of a file name (no '/', '\\', '..', control characters or empty names)",
            name.escape_debug()
        )));
    }
    Ok(())
}

/// Refuses a label map holding values that are not labels of `table` (0 is background). The
/// message lists the unknown values (the first few) and the table's labels.
pub fn check_labels_known(
    what: &Path,
    values: impl IntoIterator<Item = u8>,
    table: &crate::ClassTable,
) -> Result<(), CoreError> {
    let mut seen = [false; 256];
    for v in values {
        seen[v as usize] = true;
    }
    let unknown: Vec<String> = (1..256)
        .filter(|&v| seen[v] && table.by_label(v as u8).is_none())
        .map(|v| v.to_string())
        .collect();
    if !unknown.is_empty() {
        let known: Vec<String> = table
            .classes
            .iter()
            .map(|c| format!("{}={}", c.label, c.name))
            .collect();
        let shown = if unknown.len() > 8 {
            format!("{}, … ({} values)", unknown[..8].join(", "), unknown.len())
        } else {
            unknown.join(", ")
        };
        return Err(invalid(format!(
            "{}: label value(s) {shown} are not in the class table (0 = background, {})",
            what.display(),
            known.join(", ")
        )));
    }
    Ok(())
}

/// Refuses a map that should hold whole numbers 0..=`max` (a label, occupancy or instance map)
/// but holds another value, e.g. a float tomogram given by mistake. `kind` names the map.
pub fn check_integer_map<'a>(
    what: &Path,
    kind: &str,
    values: impl IntoIterator<Item = &'a f32>,
    max: f32,
) -> Result<(), CoreError> {
    if let Some(v) = values
        .into_iter()
        .find(|v| !(v.fract() == 0.0 && (0.0..=max).contains(*v)))
    {
        return Err(invalid(format!(
            "{}: not {kind}: holds the value {v} (expected whole numbers 0..={max}; is this a tomogram?)",
            what.display()
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Panics inside third-party parsers

thread_local! {
    static IN_THIRD_PARTY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
static CAUGHT_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs `f`, a call into a third-party parser, turning a panic inside it into `Err(message)`.
/// Use it only around such calls: a panic in capsid's own code is a bug and must stay visible.
/// While `f` runs, [`in_third_party_code`] is true (the CLI's panic hook stays silent then);
/// every caught panic is counted ([`caught_panics`]) so fuzz campaigns can report them.
pub fn catch_third_party_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let before = IN_THIRD_PARTY.with(|c| c.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_THIRD_PARTY.with(|c| c.set(before));
    r.map_err(|payload| {
        CAUGHT_PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into())
            .replace('\n', " ")
    })
}

/// True while this thread runs a call wrapped by [`catch_third_party_panic`].
pub fn in_third_party_code() -> bool {
    IN_THIRD_PARTY.with(|c| c.get())
}

/// How many third-party panics this process has caught.
pub fn caught_panics() -> usize {
    CAUGHT_PANICS.load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_host_and_pid() {
        let name = format!("{}abc123", temp_prefix());
        let (h, p) = temp_owner(&name).unwrap();
        assert_eq!(h, host_name());
        assert_eq!(p, std::process::id());
        assert!(temp_owner(".capsid-tmp-XYZ").is_none());
        assert_eq!(temp_owner(".capsid-tmp-a.b.c.42.zz"), Some(("a.b.c", 42)));
    }

    #[test]
    fn outputs_never_inputs() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("t.mrc");
        std::fs::write(&t, b"x").unwrap();
        assert!(refuse_overwriting_inputs(&[&t], &[&t]).is_err());
        let dotted = d.path().join("sub/../t.mrc");
        assert!(refuse_overwriting_inputs(&[&dotted], &[&t]).is_err());
        assert!(refuse_overwriting_inputs(&[d.path()], &[&t]).is_err());
        let other = d.path().join("new/out.mrc");
        assert!(refuse_overwriting_inputs(&[&other], &[&t]).is_ok());
        #[cfg(unix)]
        {
            let link = d.path().join("hard.mrc");
            std::fs::hard_link(&t, &link).unwrap();
            assert!(refuse_overwriting_inputs(&[&link], &[&t]).is_err());
            let sym = d.path().join("sym.mrc");
            std::os::unix::fs::symlink(&t, &sym).unwrap();
            assert!(refuse_overwriting_inputs(&[&sym], &[&t]).is_err());
        }
    }

    #[test]
    fn locks_exclude_and_sweep() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("a.mrc");
        let l = OutputLock::acquire(&out).unwrap();
        // A second lock of the same output (a live process: ourselves) fails.
        let e = OutputLock::acquire(&out).unwrap_err().to_string();
        assert!(e.contains("being written"), "{e}");
        // Another output in the same folder is independent.
        let other = OutputLock::acquire(&d.path().join("b.mrc")).unwrap();
        drop(l);
        drop(other);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
        // A dead process of this host: swept. Another host's lock: kept.
        let dead = i32::MAX as u32 - 7; // above any pid_max
        std::fs::write(
            lock_path(&out),
            format!("host={}\npid={dead}\n", host_name()),
        )
        .unwrap();
        let l = OutputLock::acquire(&out).unwrap();
        drop(l);
        std::fs::write(lock_path(&out), "host=elsewhere.example\npid=1\n").unwrap();
        assert!(OutputLock::acquire(&out).is_err());
        let tmp = d
            .path()
            .join(format!(".capsid-tmp-{}.{dead}.abc", host_name()));
        std::fs::write(&tmp, b"x").unwrap();
        let foreign = d.path().join(".capsid-tmp-elsewhere.example.1.abc");
        std::fs::write(&foreign, b"x").unwrap();
        assert_eq!(sweep_stale(d.path()), 1);
        assert!(!tmp.exists());
        assert!(foreign.exists());
        assert!(lock_path(&out).exists());
    }

    #[test]
    fn existing_and_complete() {
        let d = tempfile::tempdir().unwrap();
        assert!(
            refuse_existing(d.path(), false, "--force").is_ok(),
            "empty folder"
        );
        let f = d.path().join("x");
        std::fs::write(&f, b"1").unwrap();
        assert!(refuse_existing(&f, false, "--force").is_err());
        assert!(refuse_existing(&f, true, "--force").is_ok());
        assert!(refuse_existing(d.path(), false, "--force").is_err());
        assert!(is_complete(&f));
        assert!(!is_complete(d.path()));
        mark_complete(d.path()).unwrap();
        assert!(is_complete(d.path()));
    }

    #[test]
    fn names_and_grids() {
        assert!(check_file_name_part("class", "ribosome_80S").is_ok());
        for bad in ["../x", "a/b", "..", "", "a\\b"] {
            assert!(check_file_name_part("class", bad).is_err(), "{bad}");
        }
        assert!(check_voxel_size("t.mrc", [0.0, 1.0, 1.0]).is_err());
        assert!(check_voxel_size("t.mrc", [f32::NAN, 1.0, 1.0]).is_err());
        assert!(check_voxel_size("t.mrc", [10.0; 3]).is_ok());
        let (a, b) = (Path::new("a.mrc"), Path::new("b.mrc"));
        assert!(check_same_grid(a, [1, 2, 3], [10.0; 3], b, [1, 2, 3], [10.005; 3]).is_ok());
        assert!(check_same_grid(a, [1, 2, 3], [10.0; 3], b, [1, 2, 3], [10.02; 3]).is_err());
        assert!(check_same_grid(a, [1, 2, 3], [10.0; 3], b, [1, 2, 4], [10.0; 3]).is_err());
    }

    #[test]
    fn backups_before_explicit_replacement() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("picks.json");
        assert_eq!(keep_backup(&p).unwrap(), None);
        std::fs::write(&p, b"old").unwrap();
        let bak = keep_backup(&p).unwrap().unwrap();
        assert_eq!(std::fs::read(bak).unwrap(), b"old");
    }

    #[test]
    fn created_dirs_removed_when_empty() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("a/b/c");
        let created = create_output_dir(&deep).unwrap();
        assert_eq!(created.len(), 3);
        remove_created_dirs(&created);
        assert!(!d.path().join("a").exists());
    }
}
