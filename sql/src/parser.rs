//! The SQL parser: sqlparser with our own [`Dialect`].
//!
//! [`TinkerDialect`] behaves exactly like sqlparser's `PostgreSqlDialect` (every hook that
//! dialect overrides is delegated, and it reports PostgreSQL's type id so the parser's
//! dialect checks take the PostgreSQL branches). Its `parse_statement` hook is where statements
//! PostgreSQL does not have (`AS OF SYSTEM TIME`, `SPLIT AT`) will be parsed.

use std::any::TypeId;

use sqlparser::ast;
use sqlparser::dialect::{BindPlaceholderStyle, Dialect, PostgreSqlDialect, Precedence};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::as_of::AsOf;
use crate::{Error, Result};

const PG: PostgreSqlDialect = PostgreSqlDialect {};

/// TinkerDB's SQL dialect: PostgreSQL plus our own statements.
#[derive(Debug, Default)]
pub struct TinkerDialect;

macro_rules! delegate {
    ($( fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        $( fn $name(&self $(, $arg: $ty)*) -> $ret { PG.$name($($arg),*) } )*
    };
}

impl Dialect for TinkerDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<PostgreSqlDialect>()
    }

    delegate! {
        fn supports_cte_materialization(&self) -> bool;
        fn identifier_quote_style(&self, identifier: &str) -> Option<char>;
        fn ordered_bind_placeholder_style(&self) -> Option<BindPlaceholderStyle>;
        fn is_delimited_identifier_start(&self, ch: char) -> bool;
        fn is_identifier_start(&self, ch: char) -> bool;
        fn is_identifier_part(&self, ch: char) -> bool;
        fn supports_unicode_string_literal(&self) -> bool;
        fn is_reserved_for_identifier(&self, kw: Keyword) -> bool;
        fn is_table_alias(&self, kw: &Keyword, parser: &mut Parser) -> bool;
        fn supports_string_literal_column_alias(&self, explicit: bool) -> bool;
        fn supports_string_literal_table_alias(&self, explicit: bool) -> bool;
        fn is_custom_operator_part(&self, ch: char) -> bool;
        fn get_next_precedence(&self, parser: &Parser) -> Option<std::result::Result<u8, ParserError>>;
        fn supports_filter_during_aggregation(&self) -> bool;
        fn supports_group_by_expr(&self) -> bool;
        fn supports_drop_group(&self) -> bool;
        fn supports_alter_user_as_alter_role(&self) -> bool;
        fn supports_create_group(&self) -> bool;
        fn supports_create_role_if_not_exists(&self) -> bool;
        fn prec_value(&self, prec: Precedence) -> u8;
        fn allow_extract_custom(&self) -> bool;
        fn allow_extract_single_quotes(&self) -> bool;
        fn supports_create_index_with_clause(&self) -> bool;
        fn supports_sql_option_without_value(&self) -> bool;
        fn supports_explain_with_utility_options(&self) -> bool;
        fn supports_listen_notify(&self) -> bool;
        fn supports_exclude_constraint(&self) -> bool;
        fn supports_factorial_operator(&self) -> bool;
        fn supports_bitwise_shift_operators(&self) -> bool;
        fn supports_tilde_like_match_operator(&self) -> bool;
        fn supports_comparison_in_between_low_bound(&self) -> bool;
        fn supports_comment_on(&self) -> bool;
        fn supports_load_extension(&self) -> bool;
        fn supports_named_fn_args_with_colon_operator(&self) -> bool;
        fn supports_named_fn_args_with_expr_name(&self) -> bool;
        fn supports_named_fn_args_with_assignment_operator(&self) -> bool;
        fn supports_empty_projections(&self) -> bool;
        fn supports_nested_comments(&self) -> bool;
        fn supports_copy_from_stdin_data(&self) -> bool;
        fn supports_string_escape_constant(&self) -> bool;
        fn supports_numeric_literal_underscores(&self) -> bool;
        fn supports_non_decimal_integer_literals(&self) -> bool;
        fn supports_array_typedef_with_brackets(&self) -> bool;
        fn supports_geometric_types(&self) -> bool;
        fn supports_order_by_using_operator(&self) -> bool;
        fn supports_set_names(&self) -> bool;
        fn supports_alter_column_type_using(&self) -> bool;
        fn supports_left_associative_joins_without_parens(&self) -> bool;
        fn supports_notnull_operator(&self) -> bool;
        fn supports_interval_options(&self) -> bool;
        fn is_interval_qualifier(&self, kw: Keyword) -> bool;
        fn supports_insert_table_alias(&self) -> bool;
        fn supports_create_table_like_parenthesized(&self) -> bool;
        fn supports_select_wildcard_with_alias(&self) -> bool;
        fn supports_comma_separated_trim(&self) -> bool;
        fn supports_xml_expressions(&self) -> bool;
        fn is_custom_type_typed_string(&self, first_keyword: Keyword, qualified: bool) -> bool;
        fn supports_aliased_function_args(&self) -> bool;
        fn supports_comment_optimizer_hint(&self) -> bool;
        fn supports_add_column_if_not_exists(&self) -> bool;
        fn supports_attach_partition_of(&self) -> bool;
        fn supports_detach_partition_of(&self) -> bool;
        fn supports_table_inheritance_markers(&self) -> bool;
        fn supports_column_generic_options(&self) -> bool;
    }

    fn parse_statement(
        &self,
        _parser: &mut Parser,
    ) -> Option<std::result::Result<ast::Statement, ParserError>> {
        // No statements of our own yet: fall through to the PostgreSQL grammar.
        None
    }
}

fn syntax(e: ParserError) -> Error {
    let msg = e.to_string();
    Error::Syntax(
        msg.strip_prefix("sql parser error: ")
            .unwrap_or(&msg)
            .to_string(),
    )
}

/// How deeply expressions and queries may nest (sqlparser's default is 50, which the SQLite
/// corpus's long AND/OR chains exceed). Binding and evaluation recurse as deeply, so this also
/// bounds their stack use; a deeper statement is 42601 rather than a stack overflow.
pub const RECURSION_LIMIT: usize = 200;

/// Parses SQL text into statements; errors are 42601.
pub fn parse(sql: &str) -> Result<Vec<ast::Statement>> {
    Parser::new(&TinkerDialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(syntax)
}

/// Parses one expression (a stored DEFAULT or CHECK expression); errors are 42601.
pub fn parse_expr(sql: &str) -> Result<ast::Expr> {
    Parser::new(&TinkerDialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(syntax)
}

/// Parses SQL text into statements with their `AS OF SYSTEM TIME` clause, if any (only a SELECT
/// may have one: 0A000 otherwise). Syntax errors are 42601; a bad clause value is 22023.
pub fn parse_with_as_of(sql: &str) -> Result<Vec<(ast::Statement, Option<AsOf>)>> {
    let lower = sql.to_ascii_lowercase();
    if !(lower.contains("system") && lower.contains("time")) {
        return Ok(parse(sql)?.into_iter().map(|s| (s, None)).collect());
    }
    let tokens = Tokenizer::new(&TinkerDialect, sql)
        .tokenize_with_location()
        .map_err(|e| syntax(e.into()))?;
    let mut out = Vec::new();
    for chunk in tokens.split(|t| t.token == Token::SemiColon) {
        let mut chunk = chunk.to_vec();
        let as_of = crate::as_of::strip(&mut chunk)?;
        let stmts = Parser::new(&TinkerDialect)
            .with_recursion_limit(RECURSION_LIMIT)
            .with_tokens_with_locations(chunk)
            .parse_statements()
            .map_err(syntax)?;
        if as_of.is_some() && !matches!(stmts.as_slice(), [ast::Statement::Query(_)]) {
            return Err(Error::NotSupported(
                "AS OF SYSTEM TIME is only supported in SELECT".into(),
            ));
        }
        out.extend(stmts.into_iter().map(|s| (s, as_of.clone())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Statements parse exactly as with PostgreSqlDialect.
    #[test]
    fn same_as_postgres() {
        let cases = [
            "SELECT a::int4 || 'x', $1 FROM t WHERE a IS NOT NULL ORDER BY 1 DESC NULLS LAST LIMIT 2",
            "SELECT 'a' ~ 'b', 2 ^ 3, 5 !",
            "CREATE TABLE t (a INT PRIMARY KEY, b VARCHAR(10) NOT NULL, PRIMARY KEY (a, b))",
            "BEGIN ISOLATION LEVEL SERIALIZABLE",
            "INSERT INTO t (a, b) VALUES (1, E'x\\ny'), (2, 'y') RETURNING *",
            "SET search_path TO public",
            "SHOW TRANSACTION ISOLATION LEVEL",
            "EXPLAIN SELECT * FROM t",
        ];
        for sql in cases {
            let ours = parse(sql).expect("parses");
            let pg = Parser::parse_sql(&PostgreSqlDialect {}, sql).expect("parses");
            assert_eq!(ours, pg, "{sql}");
        }
    }

    #[test]
    fn as_of_system_time() {
        let parsed = parse_with_as_of(
            "SELECT * FROM t AS OF SYSTEM TIME '-10s' WHERE a = 1; SELECT 'system time'",
        )
        .expect("parses");
        let plain = parse("SELECT * FROM t WHERE a = 1; SELECT 'system time'").expect("parses");
        assert_eq!(parsed[0].0, plain[0]);
        assert_eq!(
            parsed[0].1,
            Some(AsOf::Ago(std::time::Duration::from_secs(10)))
        );
        assert_eq!(parsed[1], (plain[1].clone(), None));
        let err = parse_with_as_of("DELETE FROM t AS OF SYSTEM TIME '-1s'").expect_err("fails");
        assert!(matches!(err, Error::NotSupported(_)), "{err:?}");
        let err = parse_with_as_of("SELECT * FROM t AS OF SYSTEM TIME x").expect_err("fails");
        assert!(matches!(err, Error::InvalidParameter(_)), "{err:?}");
    }

    #[test]
    fn syntax_errors() {
        let err = parse("SELEC 1").expect_err("fails");
        assert!(
            matches!(&err, Error::Syntax(m) if m.starts_with("Expected: an SQL statement")),
            "{err:?}"
        );
        assert_eq!(parse("SELECT 1; SELECT 2").expect("parses").len(), 2);
        assert_eq!(parse(" ; ").expect("parses").len(), 0);
    }
}
