//! COPY: `COPY t [(cols)] FROM STDIN` and `COPY t [(cols)] | (query) TO STDOUT`, in text or
//! CSV format, as PostgreSQL reads and writes them.
//!
//! COPY FROM is fed the client's data as it arrives ([`Session::copy_data`]): complete lines
//! are parsed at once (a CSV line may span several: a quoted field may hold newlines), each
//! field read by its column type's input, and the rows inserted through the plan of
//! `INSERT INTO t (cols) VALUES ($1, ...)` (so omitted columns get their defaults and
//! sequences) in batches of [`BATCH_ROWS`] rows or [`BATCH_BYTES`] bytes. Outside a
//! transaction block each batch commits on its own, so memory stays flat however much is
//! copied; inside a block the batches join its transaction. An error names the line (and
//! column) in its context, as PostgreSQL does.

use sqlparser::ast;

use super::TxnState;
use crate::exec::sequence::WithSequences;
use crate::plan::{Expr, Node, Plan};
use crate::store::KvTxn;
use crate::{DataType, Error, ExecResult, Result, Statement, Value, exec};

/// Rows parsed before they are inserted.
const BATCH_ROWS: usize = 1000;
/// Bytes of input parsed before the rows are inserted.
const BATCH_BYTES: usize = 1 << 20;

/// A COPY's format and options.
#[derive(Clone, Debug)]
struct Format {
    csv: bool,
    delimiter: char,
    null: String,
    header: bool,
    quote: char,
    escape: char,
}

impl Format {
    fn new(options: &[ast::CopyOption], legacy: &[ast::CopyLegacyOption]) -> Result<Format> {
        let mut csv = false;
        let (mut delimiter, mut null, mut quote, mut escape) = (None, None, None, None);
        let mut header = false;
        for o in options {
            match o {
                ast::CopyOption::Format(name) => match name.value.to_lowercase().as_str() {
                    "text" => csv = false,
                    "csv" => csv = true,
                    "binary" => return Err(unsupported("COPY BINARY")),
                    other => {
                        return Err(Error::InvalidParameter(format!(
                            "COPY format \"{other}\" not recognized"
                        )));
                    }
                },
                ast::CopyOption::Delimiter(c) => delimiter = Some(*c),
                ast::CopyOption::Null(s) => null = Some(s.clone()),
                ast::CopyOption::Header(h) => header = *h,
                ast::CopyOption::Quote(c) => quote = Some(*c),
                ast::CopyOption::Escape(c) => escape = Some(*c),
                // FREEZE changes nothing visible (pgbench sends it); the encoding is UTF-8.
                ast::CopyOption::Freeze(_) | ast::CopyOption::Encoding(_) => {}
                other => return Err(unsupported(&format!("COPY option {other}"))),
            }
        }
        for o in legacy {
            match o {
                ast::CopyLegacyOption::Csv(more) => {
                    csv = true;
                    for m in more {
                        match m {
                            ast::CopyLegacyCsvOption::Header => header = true,
                            ast::CopyLegacyCsvOption::Quote(c) => quote = Some(*c),
                            ast::CopyLegacyCsvOption::Escape(c) => escape = Some(*c),
                            other => return Err(unsupported(&format!("COPY option {other}"))),
                        }
                    }
                }
                ast::CopyLegacyOption::Header => header = true,
                ast::CopyLegacyOption::Delimiter(c) => delimiter = Some(*c),
                ast::CopyLegacyOption::Null(s) => null = Some(s.clone()),
                ast::CopyLegacyOption::Binary => return Err(unsupported("COPY BINARY")),
                other => return Err(unsupported(&format!("COPY option {other}"))),
            }
        }
        if !csv && (quote.is_some() || escape.is_some()) {
            return Err(Error::NotSupported(
                "COPY quote and escape are available only in CSV mode".into(),
            ));
        }
        let quote = quote.unwrap_or('"');
        Ok(Format {
            csv,
            delimiter: delimiter.unwrap_or(if csv { ',' } else { '\t' }),
            null: null.unwrap_or_else(|| if csv { String::new() } else { "\\N".into() }),
            header,
            quote,
            escape: escape.unwrap_or(quote),
        })
    }
}

fn unsupported(what: &str) -> Error {
    Error::NotSupported(format!("{what} is not supported"))
}

/// A line's fields: None for NULL.
type Fields = Vec<Option<String>>;

/// Splits one text-format line into fields, undoing its backslash escapes.
fn text_fields(line: &str, f: &Format) -> Fields {
    line.split(f.delimiter)
        .map(|raw| (raw != f.null).then(|| unescape(raw)))
        .collect()
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('v') => out.push('\u{b}'),
            Some(d @ '0'..='7') => {
                let mut n = d.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(v) => {
                            n = n * 8 + v;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.extend(char::from_u32(n));
            }
            Some('x') => {
                let mut n = 0;
                let mut digits = 0;
                while digits < 2 {
                    match chars.peek().and_then(|c| c.to_digit(16)) {
                        Some(v) => {
                            n = n * 16 + v;
                            chars.next();
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    out.push('x');
                } else {
                    out.extend(char::from_u32(n));
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Splits one CSV record into fields (an unquoted field equal to the NULL string is NULL).
fn csv_fields(line: &str, f: &Format) -> Fields {
    let mut fields = Vec::new();
    let mut field = String::new();
    let (mut quoted, mut in_quotes) = (false, false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            let next = chars.peek().copied();
            let escapes = next == Some(f.quote) || (f.escape != f.quote && next == Some(f.escape));
            if c == f.escape && escapes {
                field.extend(chars.next());
                continue;
            }
            if c == f.quote {
                in_quotes = false;
            } else {
                field.push(c);
            }
        } else if c == f.quote {
            in_quotes = true;
            quoted = true;
        } else if c == f.delimiter {
            fields.push(finish(&mut field, quoted, f));
            quoted = false;
        } else {
            field.push(c);
        }
    }
    fields.push(finish(&mut field, quoted, f));
    fields
}

fn finish(field: &mut String, quoted: bool, f: &Format) -> Option<String> {
    let value = std::mem::take(field);
    (quoted || value != f.null).then_some(value)
}

/// The end of the first complete record in `buf` (the index of its newline), if any. A CSV
/// record's newlines inside quotes do not end it.
fn record_end(buf: &[u8], f: &Format) -> Option<usize> {
    if !f.csv {
        return buf.iter().position(|&b| b == b'\n');
    }
    let (quote, escape) = (f.quote as u32, f.escape as u32);
    let mut in_quotes = false;
    let mut i = 0;
    while i < buf.len() {
        let b = u32::from(buf[i]);
        if in_quotes && b == escape && escape != quote {
            i += 2;
            continue;
        }
        if b == quote {
            in_quotes = !in_quotes;
        } else if buf[i] == b'\n' && !in_quotes {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// An ongoing COPY FROM STDIN.
pub struct CopyIn {
    table: String,
    names: Vec<String>,
    types: Vec<DataType>,
    format: Format,
    /// The INSERT plan with one VALUES row of parameters `$1..$n` (and defaults).
    insert: Plan,
    buf: Vec<u8>,
    /// The number of the last line read (1 is the first).
    line: u64,
    /// The end-of-data marker (`\.`) was read: the rest is ignored.
    ended: bool,
    rows: Vec<Vec<Value>>,
    bytes: usize,
    count: u64,
}

impl CopyIn {
    /// The number of columns each line holds.
    pub fn columns(&self) -> usize {
        self.names.len()
    }

    fn context(&self, rest: &str) -> String {
        format!("COPY {}, line {}{rest}", self.table, self.line)
    }

    /// Parses one record into a row of values.
    fn parse(&mut self, record: &str) -> Result<()> {
        self.line += 1;
        let record = record.strip_suffix('\r').unwrap_or(record);
        if self.line == 1 && self.format.header {
            return Ok(());
        }
        // `\.` alone ends the data in CSV too (a quoted `"\."` is a value), as in PostgreSQL;
        // psql sends it after the rows of `COPY ... FROM STDIN` in a script.
        if record == "\\." {
            self.ended = true;
            return Ok(());
        }
        let fields = if self.format.csv {
            csv_fields(record, &self.format)
        } else {
            text_fields(record, &self.format)
        };
        let bad = |message: String| {
            Error::WithContext(
                Box::new(Error::BadCopyFileFormat(message)),
                self.context(&format!(": \"{record}\"")),
            )
        };
        if fields.len() > self.names.len() {
            return Err(bad("extra data after last expected column".into()));
        }
        if fields.len() < self.names.len() {
            let missing = &self.names[fields.len()];
            return Err(bad(format!("missing data for column \"{missing}\"")));
        }
        let mut row = Vec::with_capacity(fields.len());
        for (i, field) in fields.into_iter().enumerate() {
            let value = match field {
                None => Value::Null,
                Some(text) => Value::Text(text.clone())
                    .cast(self.types[i].without_typmod())
                    .map_err(|e| {
                        let at = format!(", column {}: \"{text}\"", self.names[i]);
                        Error::WithContext(Box::new(e), self.context(&at))
                    })?,
            };
            row.push(value);
        }
        self.bytes += record.len();
        self.rows.push(row);
        Ok(())
    }

    /// The INSERT plan of the rows parsed so far (which it takes).
    fn batch(&mut self) -> Option<Plan> {
        if self.rows.is_empty() {
            return None;
        }
        self.bytes = 0;
        let rows = std::mem::take(&mut self.rows);
        let Plan::Insert {
            table,
            columns,
            source:
                Node::Values {
                    columns: vc,
                    rows: template,
                },
            on_conflict,
        } = &self.insert
        else {
            return None;
        };
        let template = template.first()?;
        let values = rows
            .into_iter()
            .map(|row| {
                template
                    .iter()
                    .map(|e| {
                        e.clone().transform(&mut |e| match e {
                            Expr::Param(i) => {
                                Expr::Constant(row.get(i).cloned().unwrap_or(Value::Null))
                            }
                            e => e,
                        })
                    })
                    .collect()
            })
            .collect();
        Some(Plan::Insert {
            table: table.clone(),
            columns: columns.clone(),
            source: Node::Values {
                columns: vc.clone(),
                rows: values,
            },
            on_conflict: on_conflict.clone(),
        })
    }
}

/// The lines of a COPY TO STDOUT.
pub struct CopyOut {
    /// The number of columns of each line.
    pub columns: usize,
    /// Whether the first line is a header (not a row).
    pub header: bool,
    /// Each line, newline included.
    pub lines: Vec<String>,
}

impl Statement {
    /// Whether this is a COPY FROM STDIN (the client sends the data).
    pub fn is_copy_from(&self) -> bool {
        matches!(&*self.ast, ast::Statement::Copy { to: false, .. })
    }

    /// Whether this is a COPY TO STDOUT (the server sends the data).
    pub fn is_copy_to(&self) -> bool {
        matches!(&*self.ast, ast::Statement::Copy { to: true, .. })
    }
}

/// The parts of a COPY statement.
struct Parts<'a> {
    source: &'a ast::CopySource,
    format: Format,
}

fn parts(stmt: &Statement) -> Result<Parts<'_>> {
    let ast::Statement::Copy {
        source,
        to,
        target,
        options,
        legacy_options,
        payload,
    } = &*stmt.ast
    else {
        return Err(Error::Internal("not a COPY statement".into()));
    };
    match (target, to) {
        (ast::CopyTarget::Stdin, false) | (ast::CopyTarget::Stdout, true) => {}
        (ast::CopyTarget::File { .. } | ast::CopyTarget::Program { .. }, _) => {
            return Err(Error::NotSupported(
                "COPY to or from a file or program is not supported; use COPY FROM STDIN or \
                 COPY TO STDOUT (psql's \\copy)"
                    .into(),
            ));
        }
        _ => return Err(Error::Syntax("syntax error in COPY".into())),
    }
    if payload.is_some() {
        return Err(unsupported("COPY data inline in the statement text"));
    }
    if !to && matches!(source, ast::CopySource::Query(_)) {
        return Err(Error::Syntax("COPY FROM takes a table, not a query".into()));
    }
    Ok(Parts {
        source,
        format: Format::new(options, legacy_options)?,
    })
}

fn quoted_list(columns: &[ast::Ident]) -> String {
    columns
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Plans COPY FROM's insert: `INSERT INTO t (cols) VALUES ($1, ...)` over the named columns
/// (all visible ones when none are named); returns the plan, the columns' types and names.
async fn plan_copy(
    txn: &mut dyn KvTxn,
    table_name: &ast::ObjectName,
    columns: &[ast::Ident],
) -> Result<(Plan, Vec<DataType>, Vec<String>)> {
    let name = table_name.to_string();
    let table = crate::catalog::get_table(txn, &name)
        .await?
        .ok_or_else(|| Error::UndefinedTable(format!("relation \"{name}\" does not exist")))?;
    let (names, list) = if columns.is_empty() {
        let names: Vec<String> = table
            .columns
            .iter()
            .filter(|c| !c.hidden)
            .map(|c| c.name.clone())
            .collect();
        let list = names
            .iter()
            .map(|n| ast::Ident::with_quote('"', n).to_string())
            .collect::<Vec<_>>()
            .join(", ");
        (names, list)
    } else {
        let names = columns.iter().map(|c| c.value.clone()).collect();
        (names, quoted_list(columns))
    };
    let params: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO {table_name} ({list}) VALUES ({})",
        params.join(", ")
    );
    let insert = crate::parser::parse(&sql)?;
    let insert = insert
        .first()
        .ok_or_else(|| Error::Internal("COPY's INSERT did not parse".into()))?;
    let (plan, types) = crate::Session::plan(txn, insert, &[]).await?;
    Ok((plan, types, names))
}

impl crate::Session {
    /// Starts a COPY FROM STDIN: checks the table and columns and plans the insert.
    pub async fn copy_from(&mut self, stmt: &Statement) -> Result<CopyIn> {
        if self.state.is_failed() {
            return Err(Error::InFailedTransaction);
        }
        let started = self.start_copy(stmt).await;
        if let Err(e) = &started {
            self.fail(e).await;
        }
        started
    }

    async fn start_copy(&mut self, stmt: &Statement) -> Result<CopyIn> {
        let Parts { source, format } = parts(stmt)?;
        let ast::CopySource::Table {
            table_name,
            columns,
        } = source
        else {
            return Err(Error::Internal("COPY FROM a query".into()));
        };
        let name = table_name.to_string();
        let planned = match &mut self.state {
            TxnState::InBlock(block) => plan_copy(block.txn.as_mut(), table_name, columns).await,
            _ => {
                let opts = txn::TxnOptions {
                    read_only: true,
                    ..txn::TxnOptions::default()
                };
                let mut txn = self.engine.store.begin(opts).await?;
                let planned = plan_copy(txn.as_mut(), table_name, columns).await;
                let _ = txn.rollback().await;
                planned
            }
        };
        let (insert, types, names) = planned?;
        if !matches!(
            &insert,
            Plan::Insert {
                source: Node::Values { .. },
                ..
            }
        ) {
            return Err(Error::Internal("COPY's INSERT plan has no VALUES".into()));
        }
        Ok(CopyIn {
            table: name,
            names,
            types,
            format,
            insert,
            buf: Vec::new(),
            line: 0,
            ended: false,
            rows: Vec::new(),
            bytes: 0,
            count: 0,
        })
    }

    /// Feeds COPY FROM data: parses the complete lines and inserts full batches. An error
    /// fails the COPY (and the block it runs in).
    pub async fn copy_data(&mut self, copy: &mut CopyIn, data: &[u8]) -> Result<()> {
        let backend = self.start_statement();
        let fed = exec::interrupt::scope(backend, self.feed(copy, data)).await;
        if let Err(e) = &fed {
            self.fail(e).await;
        }
        fed
    }

    async fn feed(&mut self, copy: &mut CopyIn, data: &[u8]) -> Result<()> {
        if copy.ended {
            return Ok(());
        }
        copy.buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(end) = record_end(&copy.buf[start..], &copy.format) {
            let record = std::str::from_utf8(&copy.buf[start..start + end])
                .map_err(|_| {
                    Error::InvalidInput("invalid byte sequence for encoding \"UTF8\"".into())
                })?
                .to_string();
            start += end + 1;
            copy.parse(&record)?;
            if copy.ended {
                break;
            }
            if copy.rows.len() >= BATCH_ROWS || copy.bytes >= BATCH_BYTES {
                self.insert_batch(copy).await?;
            }
        }
        copy.buf.drain(..start);
        Ok(())
    }

    /// CopyDone: reads the last line (one without a newline), inserts what is left and
    /// returns the `COPY n` completion.
    pub async fn copy_done(&mut self, mut copy: CopyIn) -> Result<ExecResult> {
        let backend = self.start_statement();
        let done = exec::interrupt::scope(backend, async {
            if !copy.ended && !copy.buf.is_empty() {
                copy.buf.push(b'\n');
                self.feed(&mut copy, &[]).await?;
            }
            if !copy.ended && !copy.buf.is_empty() {
                return Err(Error::BadCopyFileFormat(
                    "unterminated CSV quoted field".into(),
                ));
            }
            self.insert_batch(&mut copy).await?;
            Ok(ExecResult::Command {
                tag: "COPY".into(),
                rows: Some(copy.count),
            })
        })
        .await;
        if let Err(e) = &done {
            self.fail(e).await;
        }
        done
    }

    /// CopyFail: the client gave up; the COPY fails with 57014 (and so does its block).
    pub async fn copy_fail(&mut self, copy: CopyIn, message: &str) -> Error {
        drop(copy);
        let e = Error::QueryCanceled(format!("COPY from stdin failed: {message}"));
        self.fail(&e).await;
        e
    }

    /// Inserts the rows parsed so far: in the block's transaction, or in one of their own
    /// committed at once.
    async fn insert_batch(&mut self, copy: &mut CopyIn) -> Result<()> {
        let Some(plan) = copy.batch() else {
            return Ok(());
        };
        let inserted = match &mut self.state {
            TxnState::InBlock(block) => {
                let mut txn = WithSequences::new(block.txn.as_mut(), &self.sequences);
                exec::execute(plan, &mut txn, &self.engine.rowids, &self.engine.memory).await?
            }
            _ => {
                let opts = txn::TxnOptions {
                    isolation: self.settings.default_isolation(),
                    ..txn::TxnOptions::default()
                };
                let (mut txn, _) = self.engine.begin(opts).await?;
                let result = {
                    let mut txn = WithSequences::new(txn.as_mut(), &self.sequences);
                    exec::execute(plan, &mut txn, &self.engine.rowids, &self.engine.memory).await
                };
                match result {
                    Ok(r) => {
                        txn.commit().await?;
                        r
                    }
                    Err(e) => {
                        let _ = txn.rollback().await;
                        return Err(e);
                    }
                }
            }
        };
        if let ExecResult::Command { rows: Some(n), .. } = inserted {
            copy.count += n;
        }
        Ok(())
    }

    /// Runs a COPY TO STDOUT: the rows of the table's columns or of the query, as lines.
    pub async fn copy_to(&mut self, stmt: &Statement) -> Result<CopyOut> {
        if self.state.is_failed() {
            return Err(Error::InFailedTransaction);
        }
        let parsed = match parts(stmt) {
            Ok(p) => p,
            Err(e) => {
                self.fail(&e).await;
                return Err(e);
            }
        };
        let format = parsed.format.clone();
        let sql = match parsed.source {
            ast::CopySource::Table {
                table_name,
                columns,
            } if columns.is_empty() => format!("SELECT * FROM {table_name}"),
            ast::CopySource::Table {
                table_name,
                columns,
            } => format!("SELECT {} FROM {table_name}", quoted_list(columns)),
            ast::CopySource::Query(q) => q.to_string(),
        };
        let query = crate::parser::parse(&sql)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Internal("COPY's query did not parse".into()))?;
        let query = Statement::new(query, None, None);
        let ExecResult::Rows { columns, rows } = self.execute(&query, &[]).await? else {
            return Err(Error::Internal("COPY's query returned no rows".into()));
        };
        let mut lines = Vec::with_capacity(rows.len() + 1);
        if format.header {
            let names: Vec<Option<String>> = columns.iter().map(|c| Some(c.name.clone())).collect();
            lines.push(line(&names, &format));
        }
        for row in rows {
            let fields: Vec<Option<String>> = row.iter().map(Value::to_pg_text).collect();
            lines.push(line(&fields, &format));
        }
        Ok(CopyOut {
            columns: columns.len(),
            header: format.header,
            lines,
        })
    }
}

/// One output line of COPY TO.
fn line(fields: &[Option<String>], f: &Format) -> String {
    let mut out = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(f.delimiter);
        }
        match field {
            None => out.push_str(&f.null),
            Some(v) if f.csv => {
                let special = v.is_empty() && f.null.is_empty()
                    || *v == f.null
                    || v.contains([f.delimiter, f.quote, '\n', '\r'])
                    || v == "\\.";
                if special {
                    out.push(f.quote);
                    for c in v.chars() {
                        if c == f.quote || c == f.escape {
                            out.push(f.escape);
                        }
                        out.push(c);
                    }
                    out.push(f.quote);
                } else {
                    out.push_str(v);
                }
            }
            Some(v) => {
                for c in v.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' if f.delimiter == '\t' => out.push_str("\\t"),
                        c if c == f.delimiter => {
                            out.push('\\');
                            out.push(c);
                        }
                        c => out.push(c),
                    }
                }
            }
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> Format {
        Format::new(&[], &[]).unwrap()
    }

    fn csv() -> Format {
        Format::new(&[], &[ast::CopyLegacyOption::Csv(vec![])]).unwrap()
    }

    #[test]
    fn text_lines_unescape_and_read_nulls() {
        let f = text();
        assert_eq!(
            text_fields("1\ta\\tb\\\\c\t\\N\t\\101", &f),
            vec![
                Some("1".into()),
                Some("a\tb\\c".into()),
                None,
                Some("A".into())
            ]
        );
        let round = line(&[Some("a\tb\\c\n".into()), None], &f);
        assert_eq!(round, "a\\tb\\\\c\\n\t\\N\n");
    }

    #[test]
    fn csv_records_keep_quotes_delimiters_and_newlines() {
        let f = csv();
        assert_eq!(
            csv_fields("1,\"a,\"\"b\"\"\",,\"\"", &f),
            vec![
                Some("1".into()),
                Some("a,\"b\"".into()),
                None,
                Some("".into())
            ]
        );
        let buf = b"1,\"two\nlines\"\n2,x\n";
        assert_eq!(record_end(buf, &f), Some(13));
        assert_eq!(
            line(&[Some("a,b".into()), None, Some(String::new())], &f),
            "\"a,b\",,\"\"\n"
        );
    }
}
