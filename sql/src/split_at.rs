//! `ALTER TABLE t SPLIT AT VALUES (...)` (CockroachDB's syntax): splits the ranges holding a
//! table at the given primary-key prefixes.
//!
//! The statement is recognised before the PostgreSQL grammar sees it: `ALTER TABLE <name> SPLIT
//! AT` followed by a query (usually `VALUES`), which is parsed as an ordinary query. Each row of
//! the query is a prefix of the primary key; the split key is the table's key prefix followed by
//! the row's order-preserving encoding, exactly as row keys are built. It runs outside
//! transaction blocks (25001 inside one) and returns one row per split: the id of the range that
//! starts at the key, and the key in readable form.

use sqlparser::ast;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use crate::parser::TinkerDialect;
use crate::{Column, DataType, Error, ExecResult, Result, Value};

/// A parsed `ALTER TABLE ... SPLIT AT` statement: the table and the query of key prefixes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SplitAt {
    pub table: ast::ObjectName,
}

/// Recognises `ALTER TABLE <name> SPLIT AT <query>` (one statement, optional `;`). Returns None
/// for any other text, which then goes to the PostgreSQL grammar.
pub(crate) fn parse(sql: &str) -> Result<Option<(SplitAt, ast::Statement)>> {
    let starts = sql
        .trim_start()
        .get(..5)
        .is_some_and(|w| w.eq_ignore_ascii_case("alter"));
    if !starts || !sql.to_ascii_lowercase().contains("split") {
        return Ok(None);
    }
    let syntax = |e: sqlparser::parser::ParserError| {
        Error::Syntax(e.to_string().replace("sql parser error: ", ""))
    };
    let mut p = Parser::new(&TinkerDialect)
        .try_with_sql(sql)
        .map_err(syntax)?;
    if !p.parse_keywords(&[Keyword::ALTER, Keyword::TABLE]) {
        return Ok(None);
    }
    let table = p.parse_object_name(false).map_err(syntax)?;
    let is_word =
        |t: &Token, w: &str| matches!(t, Token::Word(word) if word.value.eq_ignore_ascii_case(w));
    if !is_word(&p.peek_token().token, "split") {
        return Ok(None);
    }
    p.next_token();
    if !p.parse_keyword(Keyword::AT) {
        return Err(Error::Syntax("expected AT after SPLIT".into()));
    }
    let query = p.parse_query().map_err(syntax)?;
    while p.consume_token(&Token::SemiColon) {}
    if p.peek_token().token != Token::EOF {
        return Err(Error::Syntax(format!(
            "unexpected {} after SPLIT AT",
            p.peek_token()
        )));
    }
    Ok(Some((SplitAt { table }, ast::Statement::Query(query))))
}

/// The result columns of SPLIT AT.
pub(crate) fn columns() -> Vec<Column> {
    vec![
        Column {
            name: "range_id".into(),
            data_type: DataType::Int8,
        },
        Column {
            name: "pretty".into(),
            data_type: DataType::Text,
        },
    ]
}

/// Casts a row of the SPLIT AT query to the primary key's leading column types.
pub(crate) fn key_prefix(table: &crate::catalog::Table, row: Vec<Value>) -> Result<Vec<Value>> {
    if row.is_empty() || row.len() > table.primary_key.len() {
        return Err(Error::InvalidParameter(format!(
            "SPLIT AT expects 1 to {} values (the primary key of \"{}\"), got {}",
            table.primary_key.len(),
            table.name,
            row.len()
        )));
    }
    row.into_iter()
        .zip(&table.primary_key)
        .map(|(v, &c)| v.cast(table.columns[c].data_type))
        .collect()
}

/// The result of SPLIT AT: one row per split.
pub(crate) fn result(splits: Vec<(u64, String)>) -> ExecResult {
    let rows = splits
        .into_iter()
        .map(|(id, pretty)| vec![Value::Int(id as i64), Value::Text(pretty)])
        .collect();
    ExecResult::Rows {
        columns: columns(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_split_at() {
        let (split, query) = parse("ALTER TABLE t SPLIT AT VALUES (10), (20);")
            .unwrap()
            .unwrap();
        assert_eq!(split.table.to_string(), "t");
        assert_eq!(query.to_string(), "VALUES (10), (20)");
        assert_eq!(parse("ALTER TABLE t ADD COLUMN c INT").unwrap(), None);
        assert_eq!(parse("SELECT 'split'").unwrap(), None);
        assert!(matches!(
            parse("ALTER TABLE t SPLIT VALUES (1)"),
            Err(Error::Syntax(_))
        ));
        assert!(matches!(
            parse("ALTER TABLE t SPLIT AT VALUES (1) x"),
            Err(Error::Syntax(_))
        ));
    }
}
