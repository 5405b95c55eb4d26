//! The app's log: every record goes to stderr and to `<data dir>/logs/hearth.log`, because a
//! desktop app started from a menu has no terminal to read. The file is rotated by size
//! (`hearth.log` → `hearth.log.1` → … → `hearth.log.3`, the oldest dropped) so it never grows
//! without bound. Filtering and formatting are env_logger's (`RUST_LOG` overrides the default
//! level); only the rotation is ours.
//!
//! Nothing secret may be logged: the Hugging Face token's Debug form is redacted
//! ([`crate::models::token::HfToken`]) and the download code logs file names and errors only.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A log file is rotated once the next record would take it past this size.
pub const MAX_LOG_BYTES: u64 = 5 * 1024 * 1024;
/// Rotated files kept besides the current one.
pub const KEEP_ROTATED: u32 = 3;
/// The current log file's name inside `<data dir>/logs`.
pub const LOG_FILE: &str = "hearth.log";

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("cannot create the log folder {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot open the log file {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("a logger is already installed in this process")]
    AlreadyInstalled,
}

/// The folder the log files live in.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("logs")
}

/// Installs the process-wide logger: stderr and the rotated file in `<data_dir>/logs`, at
/// `default_level` unless `RUST_LOG` says otherwise. Call once, early in `main`; keep the guard
/// alive until the end (dropping it flushes the file).
pub fn init(data_dir: &Path, default_level: log::LevelFilter) -> Result<LogGuard, LoggingError> {
    let file = Arc::new(Mutex::new(RotatingFile::open(&log_dir(data_dir), LOG_FILE, MAX_LOG_BYTES, KEEP_ROTATED)?));
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level.as_str()))
        .target(env_logger::Target::Pipe(Box::new(Tee { file: file.clone() })))
        .try_init()
        .map_err(|_| LoggingError::AlreadyInstalled)?;
    Ok(LogGuard { file })
}

/// Flushes the log file when dropped.
#[must_use = "the log file is flushed when the guard is dropped"]
pub struct LogGuard {
    file: Arc<Mutex<RotatingFile>>,
}

impl LogGuard {
    /// The current log file.
    pub fn path(&self) -> PathBuf {
        lock(&self.file).path()
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let _ = lock(&self.file).flush();
    }
}

fn lock(m: &Mutex<RotatingFile>) -> MutexGuard<'_, RotatingFile> {
    // A panic while writing a log line must not silence the log for the rest of the run.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// env_logger hands each formatted record to this writer in one `write_all`.
struct Tee {
    file: Arc<Mutex<RotatingFile>>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().write_all(buf);
        // A full disk must not make logging fail the caller: the record still reached stderr.
        let _ = lock(&self.file).write_record(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        lock(&self.file).flush()
    }
}

/// A file that is rotated before a record would take it past `max_bytes`. Records are never
/// split across files; a single record larger than the limit gets a file of its own.
#[derive(Debug)]
pub struct RotatingFile {
    dir: PathBuf,
    name: String,
    max_bytes: u64,
    keep: u32,
    file: File,
    len: u64,
}

impl RotatingFile {
    /// Opens (appending) `dir/name`, creating `dir` if needed.
    pub fn open(dir: &Path, name: &str, max_bytes: u64, keep: u32) -> Result<Self, LoggingError> {
        std::fs::create_dir_all(dir).map_err(|source| LoggingError::CreateDir { path: dir.to_owned(), source })?;
        let path = dir.join(name);
        let file = open_append(&path).map_err(|source| LoggingError::Open { path: path.clone(), source })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self { dir: dir.to_owned(), name: name.to_string(), max_bytes, keep, file, len })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// `name.N`, the N-th newest rotated file.
    pub fn rotated_path(&self, n: u32) -> PathBuf {
        self.dir.join(format!("{}.{n}", self.name))
    }

    pub fn write_record(&mut self, record: &[u8]) -> io::Result<()> {
        if self.len > 0 && self.len + record.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(record)?;
        self.len += record.len() as u64;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    /// Shifts `name.N` to `name.N+1` (dropping the oldest), the current file to `name.1`, and
    /// starts an empty current file.
    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.keep == 0 {
            let f = OpenOptions::new().write(true).truncate(true).open(self.path())?;
            self.file = f;
            self.len = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(self.rotated_path(self.keep));
        for n in (1..self.keep).rev() {
            let from = self.rotated_path(n);
            if from.exists() {
                std::fs::rename(&from, self.rotated_path(n + 1))?;
            }
        }
        std::fs::rename(self.path(), self.rotated_path(1))?;
        self.file = open_append(&self.path())?;
        self.len = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_default()
    }

    #[test]
    fn records_land_in_the_file_and_append_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let mut f = RotatingFile::open(&logs, LOG_FILE, 1000, 3).unwrap();
        f.write_record(b"first\n").unwrap();
        f.flush().unwrap();
        drop(f);
        let mut f = RotatingFile::open(&logs, LOG_FILE, 1000, 3).unwrap();
        f.write_record(b"second\n").unwrap();
        f.flush().unwrap();
        assert_eq!(read(&logs.join(LOG_FILE)), "first\nsecond\n");
    }

    #[test]
    fn the_file_rotates_at_the_limit_and_keeps_three() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = RotatingFile::open(dir.path(), LOG_FILE, 20, 3).unwrap();
        // Two 10-byte records fill a file exactly; the third starts a new one.
        for i in 0..9 {
            f.write_record(format!("record {i}\n").as_bytes()).unwrap();
        }
        f.flush().unwrap();
        assert_eq!(read(&f.path()), "record 8\n");
        assert_eq!(read(&f.rotated_path(1)), "record 6\nrecord 7\n");
        assert_eq!(read(&f.rotated_path(2)), "record 4\nrecord 5\n");
        assert_eq!(read(&f.rotated_path(3)), "record 2\nrecord 3\n");
        // Records 0 and 1 were in the fourth-newest file: dropped.
        assert!(!f.rotated_path(4).exists());
        for p in [f.path(), f.rotated_path(1)] {
            assert!(std::fs::metadata(&p).unwrap().len() <= 20, "{}", p.display());
        }
    }

    #[test]
    fn a_reopened_full_file_rotates_on_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOG_FILE), "0123456789abcdefghi\n").unwrap();
        let mut f = RotatingFile::open(dir.path(), LOG_FILE, 20, 3).unwrap();
        f.write_record(b"new\n").unwrap();
        f.flush().unwrap();
        assert_eq!(read(&f.path()), "new\n");
        assert_eq!(read(&f.rotated_path(1)), "0123456789abcdefghi\n");
    }

    #[test]
    fn an_unusable_folder_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the folder should be fails even for root, unlike permissions.
        let blocker = dir.path().join("data");
        std::fs::write(&blocker, "not a folder").unwrap();
        let err = RotatingFile::open(&log_dir(&blocker), LOG_FILE, 20, 3).unwrap_err();
        assert!(matches!(err, LoggingError::CreateDir { .. }), "{err:?}");
        assert!(err.to_string().contains("cannot create the log folder"), "{err}");
        // The log file's name taken by a folder: cannot open.
        std::fs::create_dir_all(dir.path().join("logs").join(LOG_FILE)).unwrap();
        let err = RotatingFile::open(&dir.path().join("logs"), LOG_FILE, 20, 3).unwrap_err();
        assert!(matches!(err, LoggingError::Open { .. }), "{err:?}");
    }
}
