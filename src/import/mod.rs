//! CSV import parsing: pure functions from uploaded bytes to validated, domain-typed rows.
//!
//! Nothing here touches the database: callers get the parsed rows plus one [`RowError`] per
//! problem, decide what to persist and report the errors back to the user. Only problems with
//! the file as a whole (empty, not UTF-8, unknown header set, …) are an [`ImportError`].
//!
//! Shared reading rules for every format: the encoding is detected first (a UTF-8 or UTF-16
//! LE/BE byte-order mark decides; without one, bytes that are not valid UTF-8 are read as
//! Windows-1252, and ASCII text with every other byte zero as UTF-16; a converted file gets a
//! [`Table::notes`] entry saying so), a leading UTF-8 byte-order mark is ignored, LF and
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
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};

/// One problem with one CSV row; the rest of the file is still imported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// The record number a spreadsheet shows: the header is row 1, each CSV record after it
    /// one more (a quoted cell spanning several lines is still one record; blank lines count,
    /// as a spreadsheet shows them as empty rows).
    pub row: usize,
    /// 1-based physical line of the file where the record starts (larger than `row` once a
    /// quoted cell above spans several lines). Filled in by the parser from the row.
    pub line: usize,
    /// The offending column's header as written in the file, when one column is at fault.
    pub column: Option<String>,
    /// Human-readable explanation, suitable for showing to the merchant as is.
    pub message: String,
}

impl RowError {
    pub(crate) fn new(row: usize, column: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            row,
            line: row,
            column: column.map(str::to_string),
            message: message.into(),
        }
    }

    /// Where the problem is, as shown to merchants: `row 194 (line 366)`, or `row 12` when
    /// the record starts on the line of the same number.
    pub fn location(&self) -> String {
        location(self.row, self.line)
    }
}

/// `row R (line L)`, or `row R` when both are equal (or the line is unknown, 0).
pub fn location(row: usize, line: usize) -> String {
    if line == row || line == 0 {
        format!("row {row}")
    } else {
        format!("row {row} (line {line})")
    }
}

/// Problems with the file as a whole: nothing of it can be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// No header line at all (zero bytes, only a BOM, or only whitespace).
    #[error("the file is empty")]
    Empty,
    /// The file starts with a UTF-8 byte-order mark but some byte sequence is not UTF-8 (a
    /// file without the mark is read as Windows-1252 instead; UTF-16 files are decoded);
    /// `line` is the 1-based line of the offending record.
    #[error(
        "the file starts with a UTF-8 byte-order mark but is not valid UTF-8 (line {line}): parts of it may be Windows-1252 / Latin-1; re-save it as \"CSV UTF-8 (Comma delimited)\" (Excel: File → Save As; LibreOffice: character set \"Unicode (UTF-8)\") and upload it again"
    )]
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
        "unrecognised CSV format: expected a Shopify product CSV (legacy or 2024+ headers), a WooCommerce product CSV, or the vendor format; found headers: {headers}{detected}"
    )]
    UnknownFormat {
        /// The file's headers, comma-separated.
        headers: String,
        /// What was detected while reading (encoding, delimiter) as ` (…; …)`, or empty.
        detected: String,
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
    /// `(row, record)`, blank records already dropped; `row` is the spreadsheet record
    /// number (header = 1), see [`RowError::row`] and [`Table::line_of`].
    pub records: Vec<(usize, StringRecord)>,
    /// Records whose field count differs from the header's (beyond empty trailing cells):
    /// one row error each, and the record itself (kept out of `records`).
    pub shape_errors: Vec<RowError>,
    /// The records of `shape_errors`, `(row, record)`, for reports that echo failed rows.
    pub rejected: Vec<(usize, StringRecord)>,
    /// Row → physical line where its record starts, for every non-blank record.
    pub lines: HashMap<usize, usize>,
    /// Notes about the file as a whole that did not stop the import, e.g. "the file was
    /// Windows-1252; converted to UTF-8" or the delimiter that was detected.
    pub notes: Vec<String>,
    /// Per column: whether a parser read it ([`Table::get`] and friends mark it), for the
    /// report's used / ignored column lists.
    /// Atomic (relaxed) rather than a `Cell` so that a table can be shared by a parser
    /// that moves between threads (a streamed import held across `await`s).
    used: Vec<AtomicBool>,
    /// Number of non-blank data records (kept, or streamed, plus refused).
    pub rows: usize,
    /// A streaming table's file converted to UTF-8 (when it was not UTF-8).
    decoded: Option<Vec<u8>>,
    delimiter: u8,
}

/// The record reader shared by [`Table::read`] and [`Table::records`]: yields each
/// non-blank record with its row, physical line and, when its field count differs from
/// the header's, the row error's message. It owns (or borrows) the bytes it reads, so a
/// [`Records`] stream can outlive the [`Table`] borrow that made it.
struct Scan<'b> {
    reader: csv::Reader<Cursor<Cow<'b, [u8]>>>,
    /// Line breaks inside quoted cells of the records read so far: row = line - these.
    embedded: usize,
    at: usize,
    line: usize,
    expected: usize,
    short_ok: bool,
}

/// One scanned record: `(row, line, record, shape error)`.
type Scanned = (usize, usize, StringRecord, Option<String>);

impl<'b> Scan<'b> {
    /// Reads the header; returns the scanner and the cleaned headers.
    fn new(
        bytes: Cow<'b, [u8]>,
        delimiter: u8,
        short_ok: bool,
    ) -> Result<(Self, Vec<String>), ImportError> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .delimiter(delimiter)
            .from_reader(Cursor::new(bytes));
        let header_rec = match reader.headers() {
            Ok(h) => h.clone(),
            Err(e) => return Err(to_import_error(e, reader.get_ref().get_ref())),
        };
        let embedded = newlines(&header_rec);
        let headers: Vec<String> = header_rec.iter().map(clean).collect();
        let expected = headers.len();
        Ok((
            Self {
                reader,
                embedded,
                at: 0,
                line: 1,
                expected,
                short_ok,
            },
            headers,
        ))
    }

    /// The bytes being read.
    fn bytes(&self) -> &[u8] {
        self.reader.get_ref().get_ref()
    }

    fn next_record(&mut self) -> Option<Result<Scanned, ImportError>> {
        loop {
            let mut rec = StringRecord::new();
            match self.reader.read_record(&mut rec) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => return Some(Err(to_import_error(e, self.bytes()))),
            }
            let inner = newlines(&rec);
            if rec.iter().all(is_blank) {
                self.embedded += inner;
                continue;
            }
            let bytes = self.reader.get_ref().get_ref();
            let start = record_start(bytes, rec.position()).max(self.at);
            self.line += bytes[self.at..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.at = start;
            let (line, row) = (self.line, self.line - self.embedded);
            self.embedded += inner;
            let (found, expected) = (rec.len(), self.expected);
            let extra_filled = rec.iter().skip(expected).any(|c| !is_blank(c));
            let shape = ((found < expected && !self.short_ok) || extra_filled).then(|| {
                let how = if found < expected { "fewer" } else { "more" };
                format!(
                    "row has {found} fields but the header has {expected} ({how} cells than columns, e.g. a stray or missing delimiter); the row is skipped so that no value is read into the wrong column"
                )
            });
            return Some(Ok((row, line, rec, shape)));
        }
    }
}

/// Replaces non-breaking spaces with plain ones and trims.
pub(crate) fn clean(raw: &str) -> String {
    if raw.contains('\u{a0}') {
        raw.replace('\u{a0}', " ").trim().to_string()
    } else {
        raw.trim().to_string()
    }
}

/// Whether [`clean`] would make `raw` empty.
fn is_blank(raw: &str) -> bool {
    raw.chars().all(|c| c.is_whitespace())
}

/// Called by [`Table::read_streaming_with`] for each record it keeps: the lowercased
/// header → column index map, the record's row, the record.
pub(crate) type Visit<'v> = &'v mut dyn FnMut(&HashMap<String, usize>, usize, &StringRecord);

/// The records of a [`Table::read_streaming_with`] table, read again one at a time (see
/// [`Table::records`]); owns what it reads, so it does not borrow the table.
pub(crate) struct Records<'b> {
    scan: Option<Scan<'b>>,
}

impl Iterator for Records<'_> {
    type Item = (usize, StringRecord);

    fn next(&mut self) -> Option<Self::Item> {
        let scan = self.scan.as_mut()?;
        loop {
            match scan.next_record()? {
                Ok((row, _, rec, None)) => return Some((row, rec)),
                Ok(_) => continue,
                // The first read saw the whole file parse; a later error cannot happen.
                Err(_) => return None,
            }
        }
    }
}

impl Table {
    /// Reads the whole file. See the module documentation for the reading rules.
    #[cfg(test)]
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
        Self::read_opts(bytes, short_ok, true, None)
    }

    /// [`Table::read`] without keeping the records: `records` stays empty (`rows` counts
    /// them) and a parser walks them with [`Table::records`] over the same bytes, one record
    /// in memory at a time (a 50 MB export would otherwise be held as 136k records next to
    /// the file itself). `visit` is called with each record it keeps (not the blank or
    /// refused ones) as it reads them: a parser's first look at the whole file (the product
    /// parser finds where each product's last row is) without a pass of its own.
    pub fn read_streaming_with(bytes: &[u8], visit: Visit<'_>) -> Result<Self, ImportError> {
        Self::read_opts(bytes, false, false, Some(visit))
    }

    fn read_opts(
        bytes: &[u8],
        short_ok: bool,
        keep: bool,
        mut visit: Option<Visit<'_>>,
    ) -> Result<Self, ImportError> {
        let (decoded, mut notes) = decode(bytes);
        let body = decoded.as_deref().unwrap_or(bytes);
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ImportError::Empty);
        }
        if let Some(at) = body.iter().position(|&b| b == 0) {
            let line = 1 + body[..at].iter().filter(|&&b| b == b'\n').count() as u64;
            return Err(ImportError::Nul { line });
        }
        let delimiter = sniff_delimiter(body);
        match delimiter {
            b';' => notes.push("the file is semicolon-delimited (a European spreadsheet export); read with ';' as the delimiter".into()),
            b'\t' => notes.push("the file is tab-delimited; read with a tab as the delimiter".into()),
            _ => {}
        }
        let (mut scan, headers) = Scan::new(Cow::Borrowed(body), delimiter, short_ok)?;
        let mut index = HashMap::new();
        for (i, h) in headers.iter().enumerate() {
            index.entry(h.to_lowercase()).or_insert(i);
        }
        let mut records = Vec::new();
        let (mut shape_errors, mut rejected) = (Vec::new(), Vec::new());
        let mut lines = HashMap::new();
        let mut rows = 0;
        let expected = headers.len();
        while let Some(next) = scan.next_record() {
            let (row, line, rec, shape) = next?;
            lines.insert(row, line);
            rows += 1;
            if let Some(msg) = shape {
                shape_errors.push(RowError {
                    line,
                    ..RowError::new(row, None, msg)
                });
                rejected.push((row, rec));
                continue;
            }
            if let Some(visit) = visit.as_mut() {
                visit(&index, row, &rec);
            }
            if keep {
                records.push((row, rec));
            }
        }
        drop(scan);
        let decoded = if keep { None } else { decoded };
        Ok(Self {
            headers,
            index,
            records,
            shape_errors,
            rejected,
            lines,
            notes,
            used: (0..expected).map(|_| AtomicBool::new(false)).collect(),
            rows,
            decoded,
            delimiter,
        })
    }

    /// The records a [`Table::read_streaming_with`] table left out, read again from `bytes` (the
    /// bytes it was read from) one at a time, as `(row, record)`: the same records as
    /// `records` would hold, in file order (blank and refused ones skipped). `bytes` must
    /// be those given to `read_streaming_with` (a converted file is read from its kept UTF-8,
    /// which moves into the stream: call this once).
    pub fn records<'b>(&mut self, bytes: &'b [u8]) -> Records<'b> {
        let body: Cow<'b, [u8]> = match self.decoded.take() {
            Some(mut owned) => {
                if owned.starts_with(b"\xEF\xBB\xBF") {
                    owned.drain(..3);
                }
                Cow::Owned(owned)
            }
            None => Cow::Borrowed(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)),
        };
        let scan = Scan::new(body, self.delimiter, false).ok().map(|(s, _)| s);
        Records { scan }
    }

    /// The physical line where row `row`'s record starts (`row` itself when unknown).
    pub fn line_of(&self, row: usize) -> usize {
        self.lines.get(&row).copied().unwrap_or(row)
    }

    /// Sets [`RowError::line`] of each error from its row.
    pub fn locate(&self, errors: &mut [RowError]) {
        for e in errors {
            e.line = self.line_of(e.row);
        }
    }

    /// Whether a column named `name` (lowercase) exists.
    pub fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The cleaned cell of column `name` (lowercase); empty when the column or cell is absent.
    /// Marks the column as used.
    pub fn get(&self, rec: &StringRecord, name: &str) -> String {
        self.index
            .get(name)
            .and_then(|&i| {
                self.used[i].store(true, Ordering::Relaxed);
                rec.get(i)
            })
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

    /// Headers (as written) of the columns some [`Table::get`] read, in file order. A repeated
    /// header counts once (only its first column is ever read).
    pub fn used_columns(&self) -> Vec<String> {
        self.columns(true)
    }

    /// Headers (as written) of the columns nothing read: the import ignored them.
    pub fn ignored_columns(&self) -> Vec<String> {
        self.columns(false)
    }

    fn columns(&self, used: bool) -> Vec<String> {
        self.headers
            .iter()
            .zip(&self.used)
            .filter(|(h, u)| u.load(Ordering::Relaxed) == used && !h.is_empty())
            .map(|(h, _)| h.clone())
            .collect()
    }

    /// [`Table::notes`] as ` (note; note)` for [`ImportError::UnknownFormat`], or empty.
    pub fn detected(&self) -> String {
        if self.notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.notes.join("; "))
        }
    }

    /// The comma-joined headers, for [`ImportError::UnknownFormat`].
    pub fn header_list(&self) -> String {
        self.headers.join(", ")
    }
}

/// Line breaks inside a record's cells (a quoted cell spanning lines).
fn newlines(rec: &StringRecord) -> usize {
    rec.iter().map(|c| c.matches('\n').count()).sum()
}

/// The file converted to UTF-8 when it is not UTF-8 already, with a note saying what was
/// detected; `(None, [])` for UTF-8 (with or without a byte-order mark). Detection: a
/// byte-order mark decides (UTF-8, UTF-16 LE, UTF-16 BE); without one, ASCII text with
/// every other byte zero (Excel's "Unicode Text" without a mark) is UTF-16, and bytes that
/// are not valid UTF-8 are Windows-1252 (Excel's plain "CSV" on Windows, a superset of
/// Latin-1). Undecodable sequences become U+FFFD.
fn decode(bytes: &[u8]) -> (Option<Vec<u8>>, Vec<String>) {
    use encoding_rs::{UTF_16BE, UTF_16LE, WINDOWS_1252};
    let (encoding, body) = match encoding_rs::Encoding::for_bom(bytes) {
        Some((e, _)) if e == encoding_rs::UTF_8 => return (None, vec![]),
        Some((e, bom)) => (e, &bytes[bom..]),
        None => match bytes {
            [a, 0, b, 0, ..] if *a != 0 && *b != 0 => (UTF_16LE, bytes),
            [0, a, 0, b, ..] if *a != 0 && *b != 0 => (UTF_16BE, bytes),
            _ if std::str::from_utf8(bytes).is_ok() => return (None, vec![]),
            _ => (WINDOWS_1252, bytes),
        },
    };
    let (text, _) = encoding.decode_without_bom_handling(body);
    let name = match encoding.name() {
        "UTF-16LE" => "UTF-16 (little-endian)",
        "UTF-16BE" => "UTF-16 (big-endian)",
        _ => "Windows-1252",
    };
    let note = format!(
        "the file was {name}, not UTF-8; converted to UTF-8 (check accented letters; to avoid this, save it as \"CSV UTF-8 (Comma delimited)\")"
    );
    (Some(text.into_owned().into_bytes()), vec![note])
}

/// The field delimiter, judged from the header line: `;` (European spreadsheet exports) or a
/// tab when the header has more of those than commas, else `,`.
fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let header = bytes.split(|&b| b == b'\n').next().unwrap_or(bytes);
    let count = |d: u8| header.iter().filter(|&&b| b == d).count();
    let (commas, semis, tabs) = (count(b','), count(b';'), count(b'\t'));
    if semis > commas && semis >= tabs {
        b';'
    } else if tabs > commas {
        b'\t'
    } else {
        b','
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
    fn semicolons_tabs_and_utf16_are_read() {
        let t = Table::read("Handle;Title;Variant Price\nmütze;Mütze;9,50\n".as_bytes()).unwrap();
        assert_eq!(t.get(&t.records[0].1, "title"), "Mütze");
        let t = Table::read(b"a\tb\n1\t2\n").unwrap();
        assert_eq!(t.get(&t.records[0].1, "b"), "2");
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                "a,b\r\nKäse,2\r\n"
                    .encode_utf16()
                    .flat_map(|u| u.to_le_bytes()),
            )
            .collect();
        let t = Table::read(&utf16).unwrap();
        assert_eq!(t.get(&t.records[0].1, "a"), "Käse");
        let bare: Vec<u8> = "a,b\n1,2\n"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert_eq!(Table::read(&bare).unwrap().records.len(), 1);
        let t = Table::read(b"a,b\nK\xE4se,2\n").unwrap();
        assert_eq!(t.get(&t.records[0].1, "a"), "Käse");
        assert!(
            t.notes[0].starts_with("the file was Windows-1252"),
            "{:?}",
            t.notes
        );
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("a;b\nÆble;2\n".encode_utf16().flat_map(|u| u.to_be_bytes()))
            .collect();
        let t = Table::read(&be).unwrap();
        assert_eq!(t.get(&t.records[0].1, "a"), "Æble");
        assert!(t.notes[0].contains("UTF-16 (big-endian)"), "{:?}", t.notes);
        assert!(t.notes[1].contains("semicolon"), "{:?}", t.notes);
        let e = Table::read(b"\xEF\xBB\xBFa,b\nK\xE4se,2\n")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("byte-order mark") && e.contains("CSV UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn rows_are_record_numbers_and_lines_are_kept() {
        let t =
            Table::read(b"a,b\r\n1,\"x\r\ny\"\r\n\r\n,\r\n2,\"p\nq\nr\"\n3,z\n4,5,6\n").unwrap();
        let rows: Vec<_> = t.records.iter().map(|(r, _)| (*r, t.line_of(*r))).collect();
        // Record 2 spans lines 2-3, line 4 is blank (row 3), ',' is row 4, record 5
        // spans lines 6-8.
        assert_eq!(rows, [(2, 2), (5, 6), (6, 9)]);
        let e = &t.shape_errors[0];
        assert_eq!(
            (e.row, e.line, e.location()),
            (7, 10, "row 7 (line 10)".to_string())
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
            Table::read(b"\xEF\xBB\xBFa,b\n1,2\nx,\xE9t\xE9\n"),
            Err(ImportError::NotUtf8 { line: 3 })
        ));
        assert!(matches!(
            Table::read(b"\xEF\xBB\xBFa,b\r\n1,2\r\nx,\xE9t\xE9\r\n"),
            Err(ImportError::NotUtf8 { line: 3 })
        ));
        assert!(matches!(
            Table::read(b"\xEF\xBB\xBFa,\xE9\n"),
            Err(ImportError::NotUtf8 { line: 1 })
        ));
    }
}
