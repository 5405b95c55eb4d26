//! The conversation store: one SQLite database (`hearth.db`) in the user's data folder holding
//! conversations, messages, attachments, settings and downloaded models.
//!
//! Opened through sqlx with WAL, foreign keys and a busy timeout; the schema in `migrations/` is
//! applied at start-up. A message left `streaming` by a crashed process is marked `interrupted`
//! (with its text kept) the next time the store opens.

mod attachments;
mod conversations;
mod error;
mod export;
mod messages;
pub mod search;
pub mod settings;
mod types;

pub use attachments::{attachment_kind, read_attachment_file, sha256_hex, AttachmentFileError, ATTACHMENT_MAX_BYTES};
pub use error::StoreError;
pub use export::{format_utc, ConversationExport, EXPORT_FORMAT, EXPORT_VERSION};
pub use search::{SearchHit, SearchOptions};
pub use settings::SettingKey;
pub use types::*;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// File name of the database inside the data folder.
pub const DB_FILE: &str = "hearth.db";

/// The schema migrations in `migrations/`, embedded: (version, description, SQL), one entry per
/// file (`migrations_lists_every_file` checks none is left out). Built by hand rather than with
/// `sqlx::migrate!`, whose `macros` feature compiles a second SQLite for the build host; the
/// checksums are the same (sha384 of the SQL), so databases migrated by either match.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../../../../migrations/0001_initial.sql")),
    (2, "message tree", include_str!("../../../../migrations/0002_message_tree.sql")),
    (3, "remote models", include_str!("../../../../migrations/0003_remote_models.sql")),
    (4, "model context length", include_str!("../../../../migrations/0004_model_context_length.sql")),
];

static MIGRATOR: std::sync::LazyLock<sqlx::migrate::Migrator> = std::sync::LazyLock::new(|| {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                let no_tx = sql.starts_with("-- no-transaction");
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sqlx::SqlStr::from_static(sql),
                    no_tx,
                )
            })
            .collect(),
    )
});

/// How to open the store. `Default` is what the app uses; tests shorten the busy timeout and can
/// cap the database size to simulate a full disk.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// How long a statement waits for another process's lock before failing with `Locked`.
    pub busy_timeout: Duration,
    /// `PRAGMA max_page_count` on every connection: writes beyond it fail like a full disk.
    pub max_page_count: Option<u32>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self { busy_timeout: Duration::from_secs(5), max_page_count: None }
    }
}

/// A handle on the open database. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    data_dir: PathBuf,
    db_path: PathBuf,
    instance: Arc<InstanceLock>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("db_path", &self.db_path).finish_non_exhaustive()
    }
}

/// Held for the life of a store. Streaming messages name their writer's instance; at start-up a
/// writer whose lock file can be locked has died, so its messages are interrupted — while a live
/// writer in another process (the desktop app while the CLI runs) is left alone.
struct InstanceLock {
    id: String,
    path: PathBuf,
    _file: File,
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir`, applies migrations and marks messages
    /// left `streaming` by a dead process as `interrupted`.
    pub async fn open(data_dir: &Path) -> Result<Store> {
        Self::open_with(data_dir, &OpenOptions::default()).await
    }

    pub async fn open_with(data_dir: &Path, opts: &OpenOptions) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|source| {
            if error::io_kind_is_read_only(&source) {
                StoreError::ReadOnly { path: data_dir.to_path_buf(), detail: source.to_string() }
            } else {
                StoreError::CreateDir { path: data_dir.to_path_buf(), source }
            }
        })?;
        let db_path = data_dir.join(DB_FILE);
        check_header(&db_path)?;

        let mut connect = SqliteConnectOptions::new()
            .filename(&db_path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode survives an application crash; only power loss can lose the
            // last commits.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(opts.busy_timeout);
        if let Some(pages) = opts.max_page_count {
            connect = connect.pragma("max_page_count", pages.to_string());
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(connect)
            .await
            .map_err(|e| error::classify(&db_path, e))?;

        // A file with a valid header can still be damaged: reading the schema finds most of it.
        sqlx::query("SELECT count(*) FROM sqlite_master")
            .fetch_one(&pool)
            .await
            .map_err(|e| error::classify(&db_path, e))?;
        check_schema_version(&pool, &db_path).await?;
        MIGRATOR.run(&pool).await.map_err(|e| migrate_error(&db_path, e))?;

        let instance = Arc::new(take_instance_lock(data_dir)?);
        let store = Store { pool, data_dir: data_dir.to_path_buf(), db_path, instance };
        store.recover_interrupted().await?;
        Ok(store)
    }

    /// Moves a damaged database (and its WAL/SHM side files) aside as
    /// `hearth.db.corrupt-<unix ms>` and opens a fresh one. Returns the store and where the old
    /// file went. Never deletes anything.
    pub async fn open_fresh_moving_aside(data_dir: &Path) -> Result<(Store, Option<PathBuf>)> {
        let db_path = data_dir.join(DB_FILE);
        let mut moved = None;
        if db_path.exists() {
            let aside = data_dir.join(format!("{DB_FILE}.corrupt-{}", now_ms()));
            for suffix in ["", "-wal", "-shm"] {
                let from = PathBuf::from(format!("{}{suffix}", db_path.display()));
                if from.exists() {
                    let to = PathBuf::from(format!("{}{suffix}", aside.display()));
                    std::fs::rename(&from, &to).map_err(|source| StoreError::Io {
                        action: "move aside",
                        path: from.clone(),
                        source,
                    })?;
                }
            }
            moved = Some(aside);
        }
        let store = Self::open(data_dir).await?;
        Ok((store, moved))
    }

    /// The connection pool, for services that own their own tables (e.g. `models`).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The data folder this store lives in (attachments are stored under it).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Path of the database file.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// The highest schema version this build knows.
    pub fn known_schema_version() -> i64 {
        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Runs SQLite's `quick_check`; `Corrupt` if it finds damage.
    pub async fn check_integrity(&self) -> Result<()> {
        let rows = sqlx::query("PRAGMA quick_check").fetch_all(&self.pool).await.map_err(|e| self.err(e))?;
        let msgs: Vec<String> = rows.iter().filter_map(|r| r.try_get::<String, _>(0).ok()).collect();
        if msgs.len() == 1 && msgs[0] == "ok" {
            Ok(())
        } else {
            Err(StoreError::Corrupt { path: self.db_path.clone(), detail: msgs.join("; ") })
        }
    }

    /// Closes the pool, waiting for connections to finish (checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn err(&self, e: sqlx::Error) -> StoreError {
        error::classify(&self.db_path, e)
    }

    pub(crate) fn instance_id(&self) -> &str {
        &self.instance.id
    }

    /// Marks `streaming` messages whose writer is gone as `interrupted`, keeping their text.
    async fn recover_interrupted(&self) -> Result<u64> {
        let owners: Vec<Option<String>> =
            sqlx::query("SELECT DISTINCT stream_owner FROM messages WHERE state = 'streaming'")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(e))?
                .iter()
                .map(|r| r.try_get::<Option<String>, _>(0).unwrap_or(None))
                .collect();
        let mut recovered = 0;
        for owner in owners {
            if let Some(id) = &owner {
                if id == self.instance_id() || instance_alive(&self.data_dir, id) {
                    continue;
                }
            }
            let done = sqlx::query(
                "UPDATE messages SET state = 'interrupted', stream_owner = NULL, updated_at = ?
                 WHERE state = 'streaming' AND stream_owner IS ?",
            )
            .bind(now_ms())
            .bind(&owner)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
            recovered += done.rows_affected();
        }
        if recovered > 0 {
            log::info!("marked {recovered} message(s) left streaming by a crash as interrupted");
        }
        Ok(recovered)
    }
}

/// Refuses files that are clearly not SQLite before SQLite touches them, so nothing is written.
fn check_header(db_path: &Path) -> Result<()> {
    use std::io::Read;
    let mut f = match File::open(db_path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(StoreError::Io { action: "open", path: db_path.to_path_buf(), source }),
    };
    let mut header = Vec::with_capacity(16);
    f.by_ref().take(16).read_to_end(&mut header).map_err(|source| StoreError::Io {
        action: "read",
        path: db_path.to_path_buf(),
        source,
    })?;
    // An empty file is a valid empty database to SQLite.
    if !header.is_empty() && header != b"SQLite format 3\0" {
        return Err(StoreError::Corrupt {
            path: db_path.to_path_buf(),
            detail: "the file does not start with the SQLite header".into(),
        });
    }
    Ok(())
}

async fn check_schema_version(pool: &SqlitePool, db_path: &Path) -> Result<()> {
    let has_table: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_one(pool)
            .await
            .map_err(|e| error::classify(db_path, e))?;
    if has_table == 0 {
        return Ok(());
    }
    let found: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
        .fetch_one(pool)
        .await
        .map_err(|e| error::classify(db_path, e))?;
    let known = Store::known_schema_version();
    match found {
        Some(found) if found > known => Err(StoreError::NewerSchema { path: db_path.to_path_buf(), found, known }),
        _ => Ok(()),
    }
}

fn migrate_error(db_path: &Path, e: sqlx::migrate::MigrateError) -> StoreError {
    use sqlx::migrate::MigrateError;
    match e {
        MigrateError::Execute(e) => error::classify(db_path, e),
        MigrateError::ExecuteMigration(e, _) => error::classify(db_path, e),
        MigrateError::VersionMissing(v) => {
            StoreError::NewerSchema { path: db_path.to_path_buf(), found: v, known: Store::known_schema_version() }
        }
        other => StoreError::Migrate { path: db_path.to_path_buf(), detail: other.to_string() },
    }
}

fn run_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("run")
}

fn take_instance_lock(data_dir: &Path) -> Result<InstanceLock> {
    let dir = run_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(|source| StoreError::CreateDir { path: dir.clone(), source })?;
    sweep_stale_locks(&dir);
    let id = format!("{}-{}", std::process::id(), now_ms());
    // Two stores opened in the same millisecond by one process still need distinct ids.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = format!("{id}-{}", COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let path = dir.join(format!("{id}.lock"));
    // Lock under another name and rename: a sweeper in another process never sees a `.lock`
    // file that is not locked yet.
    let fresh = dir.join(format!("{id}.new"));
    let file =
        File::create(&fresh).map_err(|source| StoreError::Io { action: "create", path: fresh.clone(), source })?;
    file.lock().map_err(|source| StoreError::Io { action: "lock", path: fresh.clone(), source })?;
    std::fs::rename(&fresh, &path).map_err(|source| StoreError::Io {
        action: "rename",
        path: fresh.clone(),
        source,
    })?;
    Ok(InstanceLock { id, path, _file: file })
}

/// Removes lock files left by stores whose process died (a lock nobody holds), so `run/` does
/// not grow with every crash.
fn sweep_stale_locks(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "lock") {
            if let Ok(file) = File::open(&path) {
                if file.try_lock().is_ok() {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }
}

/// Whether the store instance `id` still holds its lock (its process is alive).
fn instance_alive(data_dir: &Path, id: &str) -> bool {
    // Ids are generated by us; anything with a path separator is not one of ours.
    if id.contains(['/', '\\']) {
        return false;
    }
    let path = run_dir(data_dir).join(format!("{id}.lock"));
    let Ok(file) = File::open(&path) else {
        return false;
    };
    match file.try_lock() {
        Ok(()) => {
            // We got the lock: the owner is gone. Tidy its lock file.
            let _ = file.unlock();
            let _ = std::fs::remove_file(&path);
            false
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migration file missing from `MIGRATIONS` would never run: every file in the folder
    /// must be listed, with the version and description sqlx derives from its name.
    #[test]
    fn migrations_lists_every_file() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
        let mut files: Vec<(i64, String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .map(|p| {
                let name = p.file_stem().unwrap().to_str().unwrap().to_string();
                let (v, d) = name.split_once('_').unwrap();
                (v.parse().unwrap(), d.replace('_', " "), std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        files.sort();
        let listed: Vec<(i64, String, String)> =
            MIGRATIONS.iter().map(|&(v, d, sql)| (v, d.to_string(), sql.to_string())).collect();
        assert_eq!(listed, files);
        assert_eq!(MIGRATOR.iter().count(), files.len());
    }
}
