//! The ledger: every label issued is recorded (record, content hashes, time, signer) in an
//! embedded SQLite database, so a provider can answer for content whose metadata was stripped
//! and keep the logs the CAC measures require for at least six months (办法 Art. 9). Rows are
//! never deleted by the program.

// Library code never unwraps: everything it handles may come from outside.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use aigc_core::AigcRecord;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Ledger errors.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The database could not be opened, migrated or queried.
    #[error("ledger {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    /// The directory for the database could not be created.
    #[error("ledger {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The database was written by a newer aigc-mark.
    #[error(
        "ledger {path} has schema version {found}, newer than this program's {supported}; upgrade aigc-mark"
    )]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
}

/// Schema migrations, applied in order; the database's `user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    // 1: labels issued.
    "CREATE TABLE labels (
        id INTEGER PRIMARY KEY,
        issued_at TEXT NOT NULL,
        action TEXT NOT NULL,
        label TEXT NOT NULL,
        content_producer TEXT NOT NULL,
        produce_id TEXT NOT NULL,
        content_propagator TEXT NOT NULL,
        propagate_id TEXT NOT NULL,
        record_json TEXT NOT NULL,
        format TEXT NOT NULL,
        input_sha256 TEXT,
        output_sha256 TEXT NOT NULL,
        signer_key_id TEXT,
        source_name TEXT
    );
    CREATE INDEX labels_produce_id ON labels(produce_id);
    CREATE INDEX labels_propagate_id ON labels(propagate_id);
    CREATE INDEX labels_input_sha256 ON labels(input_sha256);
    CREATE INDEX labels_output_sha256 ON labels(output_sha256);",
    // 2: the 64-bit watermark payload of each label (hex), so a mark found in a file whose
    // metadata was stripped resolves to its record.
    "ALTER TABLE labels ADD COLUMN watermark_payload TEXT;
    CREATE INDEX labels_watermark_payload ON labels(watermark_payload);",
];

/// What happened to the label when it was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A producer labelled its own output.
    Produce,
    /// A platform added its propagator fields.
    Propagate,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Produce => "produce",
            Action::Propagate => "propagate",
        }
    }
}

/// One issued label, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    /// Row id.
    pub id: i64,
    /// When it was issued (UTC, RFC 3339).
    pub issued_at: String,
    /// Produce or propagate.
    pub action: String,
    /// The record as written (bare JSON).
    pub record_json: String,
    /// The file format.
    pub format: String,
    /// SHA-256 of the input file, hex.
    pub input_sha256: Option<String>,
    /// SHA-256 of the labelled output file, hex.
    pub output_sha256: String,
    /// The key id that signed, if any.
    pub signer_key_id: Option<String>,
    /// The input's file name (no directories), for people reading the ledger.
    pub source_name: Option<String>,
    /// The watermark payload (16 hex digits).
    pub watermark_payload: Option<String>,
}

/// What to record for one issued label.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    /// Produce or propagate.
    pub action: Action,
    /// The record written.
    pub record: &'a AigcRecord,
    /// The file format.
    pub format: &'a str,
    /// SHA-256 of the input, hex.
    pub input_sha256: Option<&'a str>,
    /// SHA-256 of the output, hex.
    pub output_sha256: &'a str,
    /// The signing key's id.
    pub signer_key_id: Option<&'a str>,
    /// The input's file name.
    pub source_name: Option<&'a str>,
    /// The watermark payload derived from the record (16 hex digits).
    pub watermark_payload: Option<&'a str>,
}

/// An open ledger.
pub struct Ledger {
    conn: Connection,
    path: String,
}

/// The per-user ledger: `$AIGC_MARK_HOME/ledger.sqlite`, else
/// `$XDG_DATA_HOME/aigc-mark/ledger.sqlite`, else `~/.local/share/aigc-mark/ledger.sqlite`.
pub fn default_ledger_path() -> PathBuf {
    aigc_core::user_dirs::aigc_mark_dir(aigc_core::user_dirs::UserDir::Data).join("ledger.sqlite")
}

impl Ledger {
    /// Opens (creating and migrating as needed) the ledger at `path`.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| LedgerError::Io {
                path: shown.clone(),
                source,
            })?;
        }
        let sql = |source| LedgerError::Sqlite {
            path: shown.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(sql)?;
        // Several labelling processes may share one ledger: wait for locks instead of failing.
        conn.busy_timeout(Duration::from_secs(30)).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        let mut ledger = Self { conn, path: shown };
        ledger.migrate()?;
        Ok(ledger)
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
        move |source| LedgerError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), LedgerError> {
        let path = self.path.clone();
        let sql = |source| LedgerError::Sqlite {
            path: path.clone(),
            source,
        };
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql)?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(LedgerError::TooNew {
                path: self.path.clone(),
                found: version,
                supported,
            });
        }
        let tx = self.conn.transaction().map_err(sql)?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(m).map_err(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// The schema version in force.
    pub fn schema_version(&self) -> Result<i64, LedgerError> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(self.sql())
    }

    /// Records one issued label; returns its row id.
    pub fn record(&self, e: &NewEntry<'_>) -> Result<i64, LedgerError> {
        let r = e.record;
        self.conn
            .execute(
                "INSERT INTO labels (issued_at, action, label, content_producer, produce_id, content_propagator,
                 propagate_id, record_json, format, input_sha256, output_sha256, signer_key_id, source_name,
                 watermark_payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    rfc3339_utc(SystemTime::now()),
                    e.action.as_str(),
                    r.label.as_str(),
                    r.content_producer,
                    r.produce_id,
                    r.content_propagator,
                    r.propagate_id,
                    r.to_bare_json(),
                    e.format,
                    e.input_sha256,
                    e.output_sha256,
                    e.signer_key_id,
                    e.source_name,
                    e.watermark_payload,
                ],
            )
            .map_err(self.sql())?;
        Ok(self.conn.last_insert_rowid())
    }

    fn query(&self, where_clause: &str, value: &str) -> Result<Vec<LedgerEntry>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT id, issued_at, action, record_json, format, input_sha256, output_sha256, signer_key_id,
                 source_name, watermark_payload FROM labels WHERE {where_clause} ORDER BY id"
            ))
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([value], |row| {
                Ok(LedgerEntry {
                    id: row.get(0)?,
                    issued_at: row.get(1)?,
                    action: row.get(2)?,
                    record_json: row.get(3)?,
                    format: row.get(4)?,
                    input_sha256: row.get(5)?,
                    output_sha256: row.get(6)?,
                    signer_key_id: row.get(7)?,
                    source_name: row.get(8)?,
                    watermark_payload: row.get(9)?,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// Entries whose ProduceID or PropagateID is `id`.
    pub fn find_by_id(&self, id: &str) -> Result<Vec<LedgerEntry>, LedgerError> {
        self.query("produce_id = ?1 OR propagate_id = ?1", id)
    }

    /// Entries whose input or output file had this SHA-256 (hex, any case).
    pub fn find_by_hash(&self, sha256_hex: &str) -> Result<Vec<LedgerEntry>, LedgerError> {
        self.query(
            "input_sha256 = ?1 OR output_sha256 = ?1",
            &sha256_hex.to_ascii_lowercase(),
        )
    }

    /// Entries whose watermark payload is `hex` (16 hex digits, any case).
    pub fn find_by_payload(&self, hex: &str) -> Result<Vec<LedgerEntry>, LedgerError> {
        self.query("watermark_payload = ?1", &hex.to_ascii_lowercase())
    }

    /// Number of entries.
    pub fn count(&self) -> Result<i64, LedgerError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM labels", [], |r| r.get(0))
            .map_err(self.sql())
    }

    /// Whether a ProduceID has been issued before (to refuse duplicates).
    pub fn produce_id_exists(&self, producer: &str, produce_id: &str) -> Result<bool, LedgerError> {
        self.conn
            .query_row(
                "SELECT 1 FROM labels WHERE content_producer = ?1 AND produce_id = ?2 AND action = 'produce' LIMIT 1",
                params![producer, produce_id],
                |_| Ok(()),
            )
            .optional()
            .map(|o| o.is_some())
            .map_err(self.sql())
    }
}

/// Formats a time as RFC 3339 UTC with milliseconds, e.g. `2026-11-22T03:04:05.678Z`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (proleptic Gregorian), after Howard Hinnant's published algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigc_core::Label;

    #[test]
    fn time_format() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_millis(1_795_836_245_678)),
            "2026-11-28T03:24:05.678Z"
        );
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn records_and_finds_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("ledger.sqlite");
        let record = AigcRecord::new(Label::Generated, "001191440300708461136T1XGW3", "p-1");
        {
            let ledger = Ledger::open(&path).expect("open");
            assert_eq!(
                ledger.schema_version().expect("version"),
                MIGRATIONS.len() as i64
            );
            let e = NewEntry {
                action: Action::Produce,
                record: &record,
                format: "png",
                input_sha256: Some("aa"),
                output_sha256: "bb",
                signer_key_id: Some("k1"),
                source_name: Some("a.png"),
                watermark_payload: Some("0123456789abcdef"),
            };
            ledger.record(&e).expect("insert");
            assert!(
                ledger
                    .produce_id_exists("001191440300708461136T1XGW3", "p-1")
                    .expect("q")
            );
        }
        // Reopening migrates nothing and keeps the rows.
        let ledger = Ledger::open(&path).expect("reopen");
        assert_eq!(ledger.count().expect("count"), 1);
        assert_eq!(ledger.find_by_id("p-1").expect("q").len(), 1);
        assert_eq!(ledger.find_by_hash("BB").expect("q").len(), 1);
        assert_eq!(
            ledger.find_by_hash("aa").expect("q")[0].record_json,
            record.to_bare_json()
        );
        assert!(ledger.find_by_id("nope").expect("q").is_empty());
        assert_eq!(
            ledger.find_by_payload("0123456789ABCDEF").expect("q").len(),
            1
        );
    }

    #[test]
    fn a_version_1_ledger_is_migrated_keeping_its_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v1.sqlite");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(MIGRATIONS[0]).expect("v1 schema");
        conn.pragma_update(None, "user_version", 1).expect("set");
        conn.execute(
            "INSERT INTO labels (issued_at, action, label, content_producer, produce_id, content_propagator,
             propagate_id, record_json, format, output_sha256) VALUES ('t','produce','1','p','old','p','old','{}','png','ff')",
            [],
        )
        .expect("insert");
        drop(conn);
        let ledger = Ledger::open(&path).expect("migrate");
        assert_eq!(
            ledger.schema_version().expect("version"),
            MIGRATIONS.len() as i64
        );
        let rows = ledger.find_by_id("old").expect("q");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].watermark_payload, None);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("l.sqlite");
        let conn = Connection::open(&path).expect("open");
        conn.pragma_update(None, "user_version", 99).expect("set");
        drop(conn);
        assert!(matches!(
            Ledger::open(&path),
            Err(LedgerError::TooNew { found: 99, .. })
        ));
    }
}
