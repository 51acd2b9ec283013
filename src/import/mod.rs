//! CSV import parsing: pure functions from uploaded bytes to validated, domain-typed rows.
//!
//! Nothing here touches the database: callers get the parsed rows plus one [`RowError`] per
//! problem, decide what to persist and report the errors back to the user. Only problems with
//! the file as a whole (empty, not UTF-8, unknown header set, …) are an [`ImportError`].
//!
//! Shared reading rules for every format: a leading UTF-8 byte-order mark is ignored, LF and
//! CRLF line endings are both accepted, a record must have as many fields as the header
//! (extra trailing cells that are all empty are tolerated; any other difference is a row
//! error naming the counts, and the record is skipped rather than read shifted; only the
//! vendor format may leave trailing columns out), every cell has its non-breaking spaces (U+00A0) replaced with
//! plain spaces and is then trimmed, headers are matched case-insensitively, and records whose
//! cells are all empty are skipped (spreadsheets leave such rows at the end of a sheet).

pub mod feed;
pub mod products;
pub mod vendors;

use csv::StringRecord;
use std::collections::HashMap;

/// One problem with one CSV row; the rest of the file is still imported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// 1-based line number where the record starts, as a spreadsheet user sees it: the header
    /// is row 1, the first data record row 2. A quoted cell spanning several lines makes later
    /// rows' numbers larger than their record index.
    pub row: usize,
    /// The offending column's header as written in the file, when one column is at fault.
    pub column: Option<String>,
    /// Human-readable explanation, suitable for showing to the merchant as is.
    pub message: String,
}

impl RowError {
    pub(crate) fn new(row: usize, column: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            row,
            column: column.map(str::to_string),
            message: message.into(),
        }
    }
}

/// Problems with the file as a whole: nothing of it can be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// No header line at all (zero bytes, only a BOM, or only whitespace).
    #[error("the file is empty")]
    Empty,
    /// Some byte sequence is not UTF-8 (e.g. a Latin-1 or Windows-1252 export); `line` is the
    /// 1-based line of the offending record.
    #[error("the file is not valid UTF-8 (line {line})")]
    NotUtf8 {
        /// 1-based line where the record with the bad bytes starts.
        line: u64,
    },
    /// A NUL byte: no text field may hold one (PostgreSQL cannot store it); `line` is the
    /// 1-based line where it is.
    #[error("the file contains a NUL character (line {line})")]
    Nul {
        /// 1-based line of the NUL byte.
        line: u64,
    },
    /// The header line matches none of the supported formats.
    #[error(
        "unrecognised CSV format: expected a Shopify product CSV (legacy or 2024+ headers), a WooCommerce product CSV, or the vendor format; found headers: {headers}"
    )]
    UnknownFormat {
        /// The file's headers, comma-separated.
        headers: String,
    },
    /// The format was recognised but a column it cannot do without is absent.
    #[error("missing required column '{0}'")]
    MissingColumn(String),
    /// The CSV syntax itself is broken (reported by the `csv` crate).
    #[error("malformed CSV: {0}")]
    Csv(String),
}

/// A read CSV file: cleaned headers plus the non-blank records with their line numbers.
pub(crate) struct Table {
    /// Headers as written (cleaned: NBSP → space, trimmed), for error messages.
    pub headers: Vec<String>,
    /// Lowercased header → index of its first occurrence.
    index: HashMap<String, usize>,
    /// `(line where the record starts, record)`, blank records already dropped.
    pub records: Vec<(usize, StringRecord)>,
    /// Records whose field count differs from the header's (beyond empty trailing cells):
    /// one row error each, and the record itself (kept out of `records`).
    pub shape_errors: Vec<RowError>,
    /// The records of `shape_errors`, `(line, record)`, for reports that echo failed rows.
    pub rejected: Vec<(usize, StringRecord)>,
}

/// Replaces non-breaking spaces with plain ones and trims.
pub(crate) fn clean(raw: &str) -> String {
    raw.replace('\u{a0}', " ").trim().to_string()
}

impl Table {
    /// Reads the whole file. See the module documentation for the reading rules.
    pub fn read(bytes: &[u8]) -> Result<Self, ImportError> {
        Self::read_with(bytes, false)
    }

    /// [`Table::read`], except that records with fewer fields than the header are kept
    /// (their missing trailing cells read as empty): the hand-written vendor format often
    /// leaves trailing empty columns out. Longer records are still refused.
    pub fn read_short_rows_ok(bytes: &[u8]) -> Result<Self, ImportError> {
        Self::read_with(bytes, true)
    }

    fn read_with(bytes: &[u8], short_ok: bool) -> Result<Self, ImportError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ImportError::Empty);
        }
        if let Some(at) = bytes.iter().position(|&b| b == 0) {
            let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count() as u64;
            return Err(ImportError::Nul { line });
        }
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .from_reader(bytes);
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| to_import_error(e, bytes))?
            .iter()
            .map(clean)
            .collect();
        let mut index = HashMap::new();
        for (i, h) in headers.iter().enumerate() {
            index.entry(h.to_lowercase()).or_insert(i);
        }
        let mut records = Vec::new();
        let (mut shape_errors, mut rejected) = (Vec::new(), Vec::new());
        let (mut at, mut line) = (0, 1);
        let expected = headers.len();
        for rec in reader.records() {
            let rec = rec.map_err(|e| to_import_error(e, bytes))?;
            if rec.iter().all(|c| clean(c).is_empty()) {
                continue;
            }
            let start = record_start(bytes, rec.position()).max(at);
            line += bytes[at..start].iter().filter(|&&b| b == b'\n').count();
            at = start;
            let found = rec.len();
            let extra_filled = rec.iter().skip(expected).any(|c| !clean(c).is_empty());
            if (found < expected && !short_ok) || extra_filled {
                let how = if found < expected { "fewer" } else { "more" };
                shape_errors.push(RowError::new(
                    line,
                    None,
                    format!(
                        "row has {found} fields but the header has {expected} ({how} cells than columns, e.g. a stray or missing delimiter); the row is skipped so that no value is read into the wrong column"
                    ),
                ));
                rejected.push((line, rec));
                continue;
            }
            records.push((line, rec));
        }
        Ok(Self {
            headers,
            index,
            records,
            shape_errors,
            rejected,
        })
    }

    /// Whether a column named `name` (lowercase) exists.
    pub fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The cleaned cell of column `name` (lowercase); empty when the column or cell is absent.
    pub fn get(&self, rec: &StringRecord, name: &str) -> String {
        self.index
            .get(name)
            .and_then(|&i| rec.get(i))
            .map(clean)
            .unwrap_or_default()
    }

    /// [`Table::get`], `None` when empty.
    pub fn opt(&self, rec: &StringRecord, name: &str) -> Option<String> {
        Some(self.get(rec, name)).filter(|s| !s.is_empty())
    }

    /// The header of column `name` as written in the file, for [`RowError::column`].
    pub fn label(&self, name: &str) -> String {
        self.index
            .get(name)
            .map_or_else(|| name.to_string(), |&i| self.headers[i].clone())
    }

    /// The comma-joined headers, for [`ImportError::UnknownFormat`].
    pub fn header_list(&self) -> String {
        self.headers.join(", ")
    }
}

/// Byte offset where the record at `pos` really starts. Line numbers are counted from it
/// because `csv::Position::line()` is one short after a CRLF terminator: the reader stops at
/// the `\r`, so the next record "starts" at the previous line's `\n`.
fn record_start(bytes: &[u8], pos: Option<&csv::Position>) -> usize {
    let mut start = pos.map_or(0, |p| p.byte() as usize);
    while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
        start += 1;
    }
    start.min(bytes.len())
}

fn to_import_error(e: csv::Error, bytes: &[u8]) -> ImportError {
    match e.kind() {
        csv::ErrorKind::Utf8 { pos, .. } => {
            let start = record_start(bytes, pos.as_ref());
            let line = 1 + bytes[..start].iter().filter(|&&b| b == b'\n').count() as u64;
            ImportError::NotUtf8 { line }
        }
        _ => ImportError::Csv(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_crlf_nbsp_and_blank_rows() {
        let t = Table::read(b"\xEF\xBB\xBFA , b\r\n x\xC2\xA0,y\r\n,\r\n\r\n1,2,\r\n").unwrap();
        assert_eq!(
            (t.headers.clone(), t.label("a")),
            (vec!["A".to_string(), "b".into()], "A".to_string())
        );
        assert_eq!(t.records.len(), 2);
        assert_eq!(
            (t.records[0].0, t.get(&t.records[0].1, "a")),
            (2, "x".to_string())
        );
        assert_eq!(
            (t.records[1].0, t.get(&t.records[1].1, "c"), t.label("c")),
            (5, String::new(), "c".into())
        );
    }

    #[test]
    fn records_whose_field_count_differs_are_rejected_not_shifted() {
        let t = Table::read(b"a,b,c\n1,2,3\n4,5,6,,\n7,8,9,manual,TRUE\n10,11\n").unwrap();
        let kept: Vec<_> = t.records.iter().map(|(l, r)| (*l, t.get(r, "a"))).collect();
        assert_eq!(kept, [(2, "1".to_string()), (3, "4".into())]);
        let errs: Vec<_> = t
            .shape_errors
            .iter()
            .map(|e| (e.row, e.message.clone()))
            .collect();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].0, 4);
        assert!(
            errs[0]
                .1
                .starts_with("row has 5 fields but the header has 3"),
            "{errs:?}"
        );
        assert_eq!(errs[1].0, 5);
        assert!(
            errs[1]
                .1
                .starts_with("row has 2 fields but the header has 3"),
            "{errs:?}"
        );
        assert_eq!(t.rejected.len(), 2);
    }

    #[test]
    fn whole_file_errors() {
        assert!(matches!(Table::read(b""), Err(ImportError::Empty)));
        assert!(matches!(
            Table::read(b"\xEF\xBB\xBF \r\n"),
            Err(ImportError::Empty)
        ));
        assert!(matches!(
            Table::read(b"a,b\n1,2\nx,\xE9t\xE9\n"),
            Err(ImportError::NotUtf8 { line: 3 })
        ));
        assert!(matches!(
            Table::read(b"a,b\r\n1,2\r\nx,\xE9t\xE9\r\n"),
            Err(ImportError::NotUtf8 { line: 3 })
        ));
        assert!(matches!(
            Table::read(b"a,\xE9\n"),
            Err(ImportError::NotUtf8 { line: 1 })
        ));
    }
}
