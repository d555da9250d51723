//! Writing outputs so that a reader, a crash or a `kill -9` never sees half of them.
//!
//! # The rules
//! - **One file** ([`write_atomic`]): written to a temporary file beside it, synced and
//!   renamed over the old one, so the path holds the old content or the new, never a
//!   part. A symlink is followed and its target replaced (the link stays). A character
//!   device or a FIFO (`/dev/null`, `/dev/stdout`, a pipe) is written through, never
//!   replaced; a directory, a block device or a socket is refused. [`check_file`] says so
//!   before any work.
//! - **A set of files in a folder** ([`OutputSet`]): every file is written into a
//!   hidden staging folder beside the target (`.NAME.tmp-PID`), synced, and the staging
//!   folder then takes the target's place in one step (Linux `renameat2` with
//!   `RENAME_EXCHANGE`; elsewhere two renames, with the old set kept as `.NAME.old-PID`
//!   until the new one is in place and restored if a crash falls between them). So after
//!   a kill at any moment the folder holds the previous complete set or the new complete
//!   set. The folder is checked, locked and its stale temporaries removed when the set is
//!   begun, before any work: an unwritable, special or foreign path fails in
//!   milliseconds.
//! - **A lock per output folder**: `.NAME.lock` beside the folder, held (`flock`, not
//!   blocking) for as long as a command writes the folder. A second fleetsim writing the
//!   same folder fails at once instead of tearing the first one's files.
//! - **Only its own files are replaced**: an existing folder may hold only names the
//!   command writes (and the marker [`SET_MARKER`]); a folder with other files in it is
//!   refused, so `--out .` or `--out ~` never throws a directory away.

pub mod events;
pub mod trace;

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file every output set carries (empty): it marks the folder as fleetsim's, so
/// replacing it whole is safe.
pub const SET_MARKER: &str = ".fleetsim-output";

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename,
/// so `path` holds either its old content or the new one, never a part. Creates the
/// parent directory if needed. A symlink is followed (its target is replaced); a
/// character device or FIFO is written through; other special files are refused.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let target = match check_file(path)? {
        FileTarget::Through(p) => {
            let mut f = OpenOptions::new().write(true).open(&p)?;
            return f.write_all(bytes).and_then(|_| f.flush());
        }
        FileTarget::Replace(p) => p,
    };
    let dir = parent_of(&target);
    fs::create_dir_all(&dir)?;
    let name = target
        .file_name()
        .ok_or_else(|| invalid("has no file name"))?;
    remove_stale(&dir, &format!(".{}.tmp-", name.to_string_lossy()), false);
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, &target)?;
        sync_dir(&dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// One file written but not yet in place: the bytes are in a synced temporary file
/// beside the target, renamed over it by [`PendingFile::commit`] (a device or FIFO
/// target is written through at the commit instead). Dropped uncommitted, the temporary
/// file is removed and the target is as it was. It lets a command prepare every file of
/// its output before replacing any.
#[derive(Debug)]
pub struct PendingFile {
    target: FileTarget,
    tmp: Option<PathBuf>,
    bytes: Vec<u8>,
}

impl PendingFile {
    /// Prepares `bytes` for `path` (checked as [`check_file`] does).
    pub fn prepare(path: &Path, bytes: &[u8]) -> io::Result<PendingFile> {
        let target = check_file(path)?;
        let FileTarget::Replace(p) = &target else {
            return Ok(PendingFile {
                target,
                tmp: None,
                bytes: bytes.to_vec(),
            });
        };
        let dir = parent_of(p);
        fs::create_dir_all(&dir)?;
        let name = p.file_name().ok_or_else(|| invalid("has no file name"))?;
        remove_stale(&dir, &format!(".{}.tmp-", name.to_string_lossy()), false);
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(PendingFile {
            target,
            tmp: Some(tmp),
            bytes: Vec::new(),
        })
    }

    /// Whether the target is a device or FIFO (written through, not replaced).
    pub fn is_through(&self) -> bool {
        matches!(self.target, FileTarget::Through(_))
    }

    /// Puts the file in place.
    pub fn commit(mut self) -> io::Result<()> {
        match (&self.target, self.tmp.take()) {
            (FileTarget::Replace(p), Some(tmp)) => {
                let r = fs::rename(&tmp, p);
                if r.is_err() {
                    let _ = fs::remove_file(&tmp);
                }
                r?;
                sync_dir(&parent_of(p));
                Ok(())
            }
            (FileTarget::Through(p), _) | (FileTarget::Replace(p), None) => {
                let mut f = OpenOptions::new().write(true).open(p)?;
                f.write_all(&self.bytes).and_then(|_| f.flush())
            }
        }
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Where a one-file output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileTarget {
    /// A regular file (or none yet) at this path, replaced atomically.
    Replace(PathBuf),
    /// A character device or FIFO, written through.
    Through(PathBuf),
}

/// Checks, before any work, that `path` can take a one-file output: what it is (after
/// following symlinks) and that its folder exists or can be made. Errors say what the
/// path is: `is a directory`, `is a block device`, `is a dangling symlink`.
pub fn check_file(path: &Path) -> io::Result<FileTarget> {
    if path.as_os_str().is_empty() {
        return Err(invalid("is empty"));
    }
    let link = fs::symlink_metadata(path);
    let resolved = match &link {
        Ok(m) if m.file_type().is_symlink() => match fs::canonicalize(path) {
            Ok(p) => p,
            Err(_) => {
                // A dangling link: its target may be made, if the link is absolute or
                // relative to its own folder.
                let to = fs::read_link(path)?;
                let to = if to.is_absolute() {
                    to
                } else {
                    parent_of(path).join(to)
                };
                if fs::symlink_metadata(&to).is_ok() {
                    return Err(invalid("is a symlink loop"));
                }
                to
            }
        },
        _ => path.to_path_buf(),
    };
    match fs::metadata(&resolved) {
        Ok(m) if m.is_file() => Ok(FileTarget::Replace(resolved)),
        Ok(m) => {
            let kind = special_kind(&m);
            if matches!(kind, "a character device" | "a FIFO") {
                Ok(FileTarget::Through(resolved))
            } else {
                Err(invalid(&format!("is {kind}, not a file")))
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if resolved.file_name().is_none() || ends_with_separator(path) {
                return Err(invalid("names a folder, not a file"));
            }
            check_parent(&parent_of(&resolved))?;
            Ok(FileTarget::Replace(resolved))
        }
        Err(e) => Err(e),
    }
}

/// What a non-regular file is, for messages.
fn special_kind(m: &fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = m.file_type();
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if m.is_dir() {
        "a directory"
    } else if m.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

fn ends_with_separator(p: &Path) -> bool {
    let s = p.as_os_str().to_string_lossy();
    s.ends_with('/') || s.ends_with(std::path::MAIN_SEPARATOR)
}

/// The folder a path is in (`.` for a bare name).
fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The nearest existing ancestor of `dir` must be a directory we can write in.
fn check_parent(dir: &Path) -> io::Result<()> {
    let mut p = dir;
    loop {
        match fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                if m.permissions().readonly() || !writable(p) {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("{} is not writable", p.display()),
                    ));
                }
                return Ok(());
            }
            Ok(m) => {
                return Err(invalid(&format!(
                    "{} is {}, not a folder",
                    p.display(),
                    special_kind(&m)
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match p.parent() {
                Some(up) if !up.as_os_str().is_empty() => p = up,
                _ => return Ok(()),
            },
            Err(e) => return Err(e),
        }
    }
}

/// Whether this process may create files in `dir` (root may everywhere but on a
/// read-only mount, which the create itself reports).
fn writable(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: a valid NUL-terminated path; access(2) only reads it.
        unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        true
    }
}

fn invalid(m: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, m.to_string())
}

/// Syncs a directory's entries (after a rename), where the platform allows it.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Removes the entries of `dir` whose name starts with `prefix` followed by a process
/// id: all of them with `all` (the caller holds the folder's lock), else only those
/// whose process is gone.
fn remove_stale(dir: &Path, prefix: &str, all: bool) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Some(pid) = name.strip_prefix(prefix) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() || (!all && process_alive(pid)) {
            continue;
        }
        let p = e.path();
        let _ = if p.is_dir() && !p.is_symlink() {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
    }
}

fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// An exclusive lock on an output folder: `.NAME.lock` beside it, held until dropped.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
    path: PathBuf,
}

impl FolderLock {
    /// Takes the lock of folder `dir` (its parent must exist), failing at once if another
    /// process holds it.
    pub fn take(dir: &Path) -> io::Result<FolderLock> {
        let name = dir
            .file_name()
            .ok_or_else(|| invalid("has no folder name"))?;
        let path = parent_of(dir).join(format!(".{}.lock", name.to_string_lossy()));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: flock on a file descriptor we own.
            let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if r != 0 {
                let e = io::Error::last_os_error();
                return Err(if e.kind() == io::ErrorKind::WouldBlock {
                    io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!(
                            "is being written by another fleetsim process (it holds {}); wait for it to finish or give another output folder",
                            path.display()
                        ),
                    )
                } else {
                    e
                });
            }
        }
        Ok(FolderLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A set of output files that replaces a folder whole, or not at all (see the module
/// docs). Begin it before the work (that checks and locks the folder), write its files,
/// then [`commit`](OutputSet::commit); dropped uncommitted, it leaves the folder as it
/// was and removes its staging folder.
#[derive(Debug)]
pub struct OutputSet {
    target: PathBuf,
    staging: PathBuf,
    names: Vec<String>,
    committed: bool,
    _lock: FolderLock,
}

/// Why an output folder cannot take a set: the message, for `PATH: message`.
fn folder_error(dir: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", dir.display()))
}

impl OutputSet {
    /// Checks `dir` as the folder of a new set, locks it, removes stale temporaries of
    /// earlier, killed writers and creates the staging folder. `own` says which names an
    /// existing folder may hold (what this command writes): one with anything else in it
    /// is refused. Errors name `dir` and what is wrong.
    pub fn begin(dir: &Path, own: &dyn Fn(&str) -> bool) -> io::Result<OutputSet> {
        Self::begin_inner(dir, own).map_err(|e| folder_error(dir, e))
    }

    fn begin_inner(dir: &Path, own: &dyn Fn(&str) -> bool) -> io::Result<OutputSet> {
        if dir.as_os_str().is_empty() {
            return Err(invalid("is empty"));
        }
        // A symlink to a folder: the set goes where it points, the link stays.
        let target = match fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => fs::canonicalize(dir)
                .map_err(|_| invalid("is a dangling symlink; give a folder"))?,
            _ => dir.to_path_buf(),
        };
        let target = normal_name(&target)?;
        match fs::metadata(&target) {
            Ok(m) if m.is_dir() => {
                let foreign: Vec<String> = fs::read_dir(&target)?
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != SET_MARKER && !own(n))
                    .collect();
                if !foreign.is_empty() {
                    let mut shown: Vec<&str> = foreign.iter().map(String::as_str).collect();
                    shown.sort_unstable();
                    let more = shown.len().saturating_sub(3);
                    shown.truncate(3);
                    return Err(invalid(&format!(
                        "holds files fleetsim did not write ({}{}); give a new or empty folder",
                        shown.join(", "),
                        if more > 0 {
                            format!(" and {more} more")
                        } else {
                            String::new()
                        }
                    )));
                }
            }
            Ok(m) => {
                return Err(invalid(&format!(
                    "is {}, not a folder; give a folder",
                    special_kind(&m)
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let parent = parent_of(&target);
        check_parent(&parent)?;
        fs::create_dir_all(&parent)?;
        let lock = FolderLock::take(&target)?;
        let name = target
            .file_name()
            .expect("normal_name has a name")
            .to_string_lossy()
            .into_owned();
        remove_stale(&parent, &format!(".{name}.tmp-"), true);
        // A crash between the two renames of the fallback: put the old set back.
        if !target.exists() {
            if let Some(old) = newest_with_prefix(&parent, &format!(".{name}.old-")) {
                let _ = fs::rename(old, &target);
            }
        }
        remove_stale(&parent, &format!(".{name}.old-"), true);
        let staging = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        fs::create_dir(&staging)?;
        File::create(staging.join(SET_MARKER))?;
        Ok(OutputSet {
            target,
            staging,
            names: Vec::new(),
            committed: false,
            _lock: lock,
        })
    }

    /// The folder the set will replace (symlinks resolved).
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Where the files are written until the commit.
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    /// The final path of file `name` of the set.
    pub fn final_path(&self, name: &str) -> PathBuf {
        self.target.join(name)
    }

    /// Writes file `name` (a plain file name) of the set.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        let mut f = self.create(name)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(self.final_path(name))
    }

    /// Creates file `name` (a plain file name) of the set for streaming; the caller syncs
    /// it (`sync_all`) before the commit.
    pub fn create(&mut self, name: &str) -> io::Result<File> {
        if Path::new(name).file_name() != Some(OsStr::new(name)) || name == SET_MARKER {
            return Err(invalid(&format!("{name:?} is not a plain file name")));
        }
        self.names.push(name.to_string());
        File::create(self.staging.join(name))
    }

    /// Puts the set in place of the folder in one step; returns the final paths of the
    /// files written, in order.
    pub fn commit(mut self) -> io::Result<Vec<PathBuf>> {
        let result = self.swap();
        if result.is_ok() {
            self.committed = true;
        }
        result.map_err(|e| folder_error(&self.target, e))?;
        Ok(self.names.iter().map(|n| self.target.join(n)).collect())
    }

    fn swap(&mut self) -> io::Result<()> {
        sync_dir(&self.staging);
        let parent = parent_of(&self.target);
        if !self.target.exists() {
            fs::rename(&self.staging, &self.target)?;
            sync_dir(&parent);
            return Ok(());
        }
        if exchange(&self.staging, &self.target)? {
            // The staging path now holds the old set.
            sync_dir(&parent);
            let _ = fs::remove_dir_all(&self.staging);
            return Ok(());
        }
        let name = self.target.file_name().expect("named").to_string_lossy();
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        fs::rename(&self.target, &old)?;
        if let Err(e) = fs::rename(&self.staging, &self.target) {
            let _ = fs::rename(&old, &self.target);
            return Err(e);
        }
        sync_dir(&parent);
        let _ = fs::remove_dir_all(&old);
        Ok(())
    }
}

impl Drop for OutputSet {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

/// The path with its last component a normal name (not `.`, `..` or a root).
fn normal_name(p: &Path) -> io::Result<PathBuf> {
    match p.components().next_back() {
        Some(std::path::Component::Normal(_)) => Ok(p.to_path_buf()),
        _ => {
            // `.`, `..`, `/`: the folder by its real name.
            let real = fs::canonicalize(p)?;
            if real.file_name().is_none() {
                return Err(invalid("is the root folder"));
            }
            Ok(real)
        }
    }
}

fn newest_with_prefix(dir: &Path, prefix: &str) -> Option<PathBuf> {
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

/// Exchanges two paths atomically; `Ok(false)` where the platform or file system cannot.
fn exchange(a: &Path, b: &Path) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let ca = std::ffi::CString::new(a.as_os_str().as_bytes()).map_err(io::Error::other)?;
        let cb = std::ffi::CString::new(b.as_os_str().as_bytes()).map_err(io::Error::other)?;
        // SAFETY: valid NUL-terminated paths; renameat2 only reads them.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                ca.as_ptr(),
                libc::AT_FDCWD,
                cb.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EXDEV) => Ok(false),
            _ => Err(e),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (a, b);
        Ok(false)
    }
}

/// Quotes a word for a POSIX shell when it needs it (replay commands print with it).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `text` cut to at most `max` characters for a message, with how much was left out:
/// a 100 KB value is never echoed whole.
pub fn abbreviate(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max).collect();
    format!("{head}… ({} more characters)", n - max)
}

/// `text` cut to at most about `max` characters by leaving out its middle, with how
/// much was left out: the start and the end of a long message both stay.
pub fn abbreviate_middle(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let keep = max / 2;
    let head: String = text.chars().take(keep).collect();
    let tail: String = text.chars().skip(n - keep).collect();
    format!("{head}… ({} characters left out) …{tail}", n - 2 * keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("scenarios/a.toml"), "scenarios/a.toml");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn abbreviates_long_text() {
        assert_eq!(abbreviate("abc", 3), "abc");
        assert_eq!(abbreviate("abcdé", 2), "ab… (3 more characters)");
    }

    #[test]
    fn writes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/out.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed_and_devices_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.txt");
        fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
        write_atomic(Path::new("/dev/null"), b"gone").unwrap();
        let m = fs::metadata("/dev/null").unwrap();
        assert!(!m.is_file(), "/dev/null is still a device");
        let e = write_atomic(dir.path(), b"x").unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }

    #[test]
    fn a_set_replaces_the_folder_whole() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("o");
        let own = |n: &str| n.ends_with(".txt");
        let mut set = OutputSet::begin(&out, &own).unwrap();
        set.write("a.txt", b"1").unwrap();
        set.write("b.txt", b"1").unwrap();
        set.commit().unwrap();
        let mut set = OutputSet::begin(&out, &own).unwrap();
        set.write("a.txt", b"2").unwrap();
        // Not committed: the old set stays, the staging folder goes.
        drop(set);
        assert_eq!(fs::read(out.join("a.txt")).unwrap(), b"1");
        let mut set = OutputSet::begin(&out, &own).unwrap();
        set.write("a.txt", b"3").unwrap();
        set.commit().unwrap();
        assert_eq!(fs::read(out.join("a.txt")).unwrap(), b"3");
        assert!(
            !out.join("b.txt").exists(),
            "nothing of the old set is left"
        );
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| n == "o" || n == ".o.lock"),
            "{names:?}"
        );
    }

    #[test]
    fn a_foreign_folder_or_a_held_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("precious.doc"), "x").unwrap();
        let e = OutputSet::begin(dir.path(), &|n| n.ends_with(".txt")).unwrap_err();
        assert!(e.to_string().contains("precious.doc"), "{e}");
        let out = dir.path().join("o");
        let held = OutputSet::begin(&out, &|_| true).unwrap();
        let e = OutputSet::begin(&out, &|_| true).unwrap_err();
        assert!(e.to_string().contains("another fleetsim"), "{e}");
        drop(held);
        OutputSet::begin(&out, &|_| true).unwrap();
    }
}
