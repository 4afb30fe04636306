//! Plans: [`Plan`] for statements, [`Node`] for query operators, [`Expr`] for expressions that
//! refer to their input's columns by index. One tree printer ([`Plan::explain`]) serves EXPLAIN
//! and the golden tests.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::catalog::{Index, PRIMARY_INDEX_ID, Table};
use crate::types::ArithOp;
use crate::{Column, DataType, Value};

mod schema;
pub use schema::SchemaPlan;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl CmpOp {
    /// The operator's SQL symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::NotEq => "<>",
            CmpOp::Lt => "<",
            CmpOp::LtEq => "<=",
            CmpOp::Gt => ">",
            CmpOp::GtEq => ">=",
        }
    }

    /// The operator with its operands swapped (`a < b` ⇔ `b > a`).
    pub fn flip(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::LtEq => CmpOp::GtEq,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::GtEq => CmpOp::LtEq,
            op => op,
        }
    }
}

/// A scalar function with a fixed signature, chosen at bind time. The string, math and
/// pattern functions are evaluated in `exec::functions` and bound in `planner::functions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    /// abs(numeric): the absolute value, of the argument's type.
    Abs,
    /// lower(text).
    Lower,
    /// upper(text).
    Upper,
    /// length(text): characters.
    Length,
    /// rtrim(text): without trailing spaces (also the cast of a CHAR value to text).
    Rtrim,
    /// now() / current_timestamp: the transaction's start time, substituted as a constant
    /// when the statement runs (so it is never folded into a cached plan).
    Now,
    /// `text LIKE pattern [ESCAPE e]`; `ILike` ignores case.
    Like,
    /// `text ILIKE pattern [ESCAPE e]`.
    ILike,
    /// `text ~ regex`; `RegexI` ignores case (`~*`).
    Regex,
    /// `text ~* regex`.
    RegexI,
    /// substr(text, from [, count]): characters, 1-based.
    Substr,
    /// strpos(text, sub) / position(sub IN text): 1-based, 0 when absent.
    Strpos,
    /// replace(text, from, to).
    Replace,
    /// concat(any...): text forms of the non-NULL arguments.
    Concat,
    /// concat_ws(sep, any...): the non-NULL arguments joined by `sep`.
    ConcatWs,
    /// btrim(text [, chars]): without leading and trailing `chars` (default space).
    Btrim,
    /// ltrim(text [, chars]).
    Ltrim,
    /// rtrim(text, chars).
    RtrimChars,
    /// split_part(text, delimiter, n).
    SplitPart,
    /// lpad(text, length [, fill]).
    Lpad,
    /// rpad(text, length [, fill]).
    Rpad,
    /// left(text, n): the first n characters (all but the last -n when negative).
    Left,
    /// right(text, n).
    Right,
    /// repeat(text, n).
    Repeat,
    /// reverse(text).
    Reverse,
    /// initcap(text): each word capitalised.
    Initcap,
    /// starts_with(text, prefix).
    StartsWith,
    /// chr(int): the character with that code point.
    Chr,
    /// ascii(text): the code point of the first character.
    Ascii,
    /// round(x [, digits]): half away from zero (numeric), half to even (double).
    Round,
    /// trunc(x [, digits]).
    Trunc,
    /// ceil(x) / ceiling(x).
    Ceil,
    /// floor(x).
    Floor,
    /// sign(x): -1, 0 or 1.
    Sign,
    /// sqrt(double).
    Sqrt,
    /// power(double, double).
    Power,
    /// exp(double).
    Exp,
    /// ln(double).
    Ln,
    /// log(double): base 10.
    Log10,
    /// pi().
    Pi,
    /// mod(a, b): the remainder, of the arguments' type.
    Mod,
    /// random(): a double in [0, 1); volatile.
    Random,
    /// greatest(...): the largest non-NULL argument.
    Greatest,
    /// least(...): the smallest non-NULL argument.
    Least,
    /// gen_random_uuid(): a version 4 UUID; volatile.
    GenRandomUuid,
    /// date_trunc(unit, timestamp | timestamptz | interval); a date is truncated as a
    /// timestamptz. The date/time functions are evaluated in `exec::datetime`.
    DateTrunc,
    /// date_part(field, value): double precision.
    DatePart,
    /// extract(field FROM value): numeric.
    Extract,
    /// age(a, b): the calendar difference `a - b` in years, months and days.
    Age,
    /// make_date(year, month, day).
    MakeDate,
    /// make_timestamp(year, month, day, hour, min, sec).
    MakeTimestamp,
    /// make_interval(years, months, weeks, days, hours, mins, secs).
    MakeInterval,
    /// to_char(timestamp | timestamptz | interval | number, pattern): text (`exec::to_char`,
    /// `exec::to_char_number`).
    ToChar,
    /// `text SIMILAR TO pattern [ESCAPE e]`.
    SimilarTo,
    /// to_date(text, pattern) (`exec::to_timestamp`).
    ToDate,
    /// to_timestamp(text, pattern) or to_timestamp(seconds since the Unix epoch).
    ToTimestamp,
    /// format(fmt, args...): `%s`, `%I`, `%L`, `%%` with positions and widths
    /// (`exec::format`).
    Format,
    /// A jsonb operator or function (`exec::jsonb`).
    Jsonb(JsonbFn),
    /// An array function or operator (`exec::array`).
    Array(crate::types::array::ArrayFunc),
    /// nextval(name): bigint (`exec::sequence`; these four are resolved row by row).
    Nextval,
    /// currval(name).
    Currval,
    /// setval(name, value [, is_called]).
    Setval,
    /// lastval().
    Lastval,
    /// pg_sleep(seconds): waits (cancellable), returns an empty value.
    PgSleep,
    /// pg_backend_pid(): the session's process id.
    PgBackendPid,
    /// pg_cancel_backend(pid): cancels that session's running statement.
    PgCancelBackend,
}

/// The jsonb operators and functions, bound in `planner::jsonb` and evaluated in
/// `exec::jsonb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonbFn {
    /// `j -> key` (text) or `j -> index` (integer, negative from the end).
    Get,
    /// `j ->> key | index`: as text.
    GetText,
    /// `j #> path` (a text array literal).
    Path,
    /// `j #>> path`: as text.
    PathText,
    /// `a @> b`.
    Contains,
    /// `a <@ b`.
    ContainedBy,
    /// `j ? text`.
    Exists,
    /// `j ?| text[]`.
    ExistsAny,
    /// `j ?& text[]`.
    ExistsAll,
    /// `a || b`.
    Concat,
    /// `j - key` (text) or `j - index` (integer).
    Delete,
    /// `j #- path`.
    DeletePath,
    /// jsonb_typeof(j).
    Typeof,
    /// jsonb_array_length(j).
    ArrayLength,
    /// jsonb_build_object(key, value, ...).
    BuildObject,
    /// jsonb_build_array(value, ...).
    BuildArray,
    /// to_jsonb(value).
    ToJsonb,
    /// jsonb_set(target, path, value [, create_if_missing]).
    Set,
    /// jsonb_strip_nulls(j).
    StripNulls,
    /// jsonb_pretty(j).
    Pretty,
}

/// The jsonb table functions (`exec::jsonb_table`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonbTable {
    /// jsonb_each(j): (key text, value jsonb) per pair of an object.
    Each,
    /// jsonb_each_text(j): (key text, value text).
    EachText,
    /// jsonb_object_keys(j): the keys of an object.
    ObjectKeys,
    /// jsonb_array_elements(j): (value jsonb) per element of an array.
    ArrayElements,
    /// jsonb_array_elements_text(j): (value text).
    ArrayElementsText,
}

impl JsonbTable {
    /// The function's name.
    pub fn name(self) -> &'static str {
        match self {
            JsonbTable::Each => "jsonb_each",
            JsonbTable::EachText => "jsonb_each_text",
            JsonbTable::ObjectKeys => "jsonb_object_keys",
            JsonbTable::ArrayElements => "jsonb_array_elements",
            JsonbTable::ArrayElementsText => "jsonb_array_elements_text",
        }
    }
}

impl JsonbFn {
    /// Whether this is an operator (named by its symbol), not a function.
    pub fn is_operator(self) -> bool {
        self.name().bytes().all(|b| !b.is_ascii_alphabetic())
    }

    /// The operator's symbol or the function's name.
    pub fn name(self) -> &'static str {
        use JsonbFn as J;
        match self {
            J::Get => "->",
            J::GetText => "->>",
            J::Path => "#>",
            J::PathText => "#>>",
            J::Contains => "@>",
            J::ContainedBy => "<@",
            J::Exists => "?",
            J::ExistsAny => "?|",
            J::ExistsAll => "?&",
            J::Concat => "||",
            J::Delete => "-",
            J::DeletePath => "#-",
            J::Typeof => "jsonb_typeof",
            J::ArrayLength => "jsonb_array_length",
            J::BuildObject => "jsonb_build_object",
            J::BuildArray => "jsonb_build_array",
            J::ToJsonb => "to_jsonb",
            J::Set => "jsonb_set",
            J::StripNulls => "jsonb_strip_nulls",
            J::Pretty => "jsonb_pretty",
        }
    }
}

impl Function {
    /// The function's SQL name.
    pub fn name(self) -> &'static str {
        use Function as F;
        match self {
            F::Abs => "abs",
            F::Lower => "lower",
            F::Upper => "upper",
            F::Length => "length",
            F::Rtrim | F::RtrimChars => "rtrim",
            F::Now => "now",
            F::Like => "like",
            F::ILike => "ilike",
            F::Regex => "~",
            F::RegexI => "~*",
            F::Substr => "substr",
            F::Strpos => "strpos",
            F::Replace => "replace",
            F::Concat => "concat",
            F::ConcatWs => "concat_ws",
            F::Btrim => "btrim",
            F::Ltrim => "ltrim",
            F::SplitPart => "split_part",
            F::Lpad => "lpad",
            F::Rpad => "rpad",
            F::Left => "left",
            F::Right => "right",
            F::Repeat => "repeat",
            F::Reverse => "reverse",
            F::Initcap => "initcap",
            F::StartsWith => "starts_with",
            F::Chr => "chr",
            F::Ascii => "ascii",
            F::Round => "round",
            F::Trunc => "trunc",
            F::Ceil => "ceil",
            F::Floor => "floor",
            F::Sign => "sign",
            F::Sqrt => "sqrt",
            F::Power => "power",
            F::Exp => "exp",
            F::Ln => "ln",
            F::Log10 => "log",
            F::Pi => "pi",
            F::Mod => "mod",
            F::Random => "random",
            F::Greatest => "greatest",
            F::Least => "least",
            F::GenRandomUuid => "gen_random_uuid",
            F::DateTrunc => "date_trunc",
            F::DatePart => "date_part",
            F::Extract => "extract",
            F::Age => "age",
            F::MakeDate => "make_date",
            F::MakeTimestamp => "make_timestamp",
            F::MakeInterval => "make_interval",
            F::ToChar => "to_char",
            F::SimilarTo => "similar_to",
            F::ToDate => "to_date",
            F::ToTimestamp => "to_timestamp",
            F::Format => "format",
            F::Jsonb(j) => j.name(),
            F::Array(a) => a.name(),
            F::Nextval => "nextval",
            F::Currval => "currval",
            F::Setval => "setval",
            F::Lastval => "lastval",
            F::PgSleep => "pg_sleep",
            F::PgBackendPid => "pg_backend_pid",
            F::PgCancelBackend => "pg_cancel_backend",
        }
    }

    /// Whether this is a sequence function (evaluated with the session's state, row by row).
    pub fn is_sequence(self) -> bool {
        matches!(
            self,
            Function::Nextval | Function::Currval | Function::Setval | Function::Lastval
        )
    }

    /// Whether calls are evaluated row by row with the transaction at hand (sequence
    /// functions and `pg_sleep`, which waits), never in plain expression evaluation.
    pub fn runs_async(self) -> bool {
        self.is_sequence() || self == Function::PgSleep
    }

    /// Whether a NULL argument makes the result NULL (so a call with a NULL constant folds to
    /// NULL without being evaluated).
    pub fn is_strict(self) -> bool {
        if let Function::Array(a) = self {
            return a.is_strict();
        }
        !matches!(
            self,
            Function::Concat
                | Function::ConcatWs
                | Function::Greatest
                | Function::Least
                | Function::Format
                | Function::Jsonb(JsonbFn::BuildObject | JsonbFn::BuildArray)
        )
    }

    /// Whether each call may give a different result: never evaluated at plan time.
    pub fn is_volatile(self) -> bool {
        matches!(
            self,
            Function::Now
                | Function::Random
                | Function::GenRandomUuid
                | Function::Nextval
                | Function::Currval
                | Function::Setval
                | Function::Lastval
                | Function::PgSleep
                | Function::PgBackendPid
                | Function::PgCancelBackend
        )
    }
}

/// A set-returning function of a [`Node::ProjectSet`], over the input row.
#[derive(Clone, Debug, PartialEq)]
pub enum SetFunction {
    /// unnest(array): its elements (none for NULL).
    Unnest(Expr),
    /// generate_series(start, stop, step) of the type (as [`Node::Series`]).
    Series([Expr; 3], DataType),
}

impl SetFunction {
    /// The argument expressions.
    pub fn args(&self) -> Vec<&Expr> {
        match self {
            SetFunction::Unnest(e) => vec![e],
            SetFunction::Series(args, _) => args.iter().collect(),
        }
    }

    fn map_exprs(self, f: &mut impl FnMut(Expr) -> Expr) -> SetFunction {
        match self {
            SetFunction::Unnest(e) => SetFunction::Unnest(f(e)),
            SetFunction::Series(args, t) => SetFunction::Series(args.map(&mut *f), t),
        }
    }

    fn format(&self, names: &[String]) -> String {
        let name = match self {
            SetFunction::Unnest(_) => "unnest",
            SetFunction::Series(..) => "generate_series",
        };
        let args: Vec<String> = self.args().iter().map(|e| e.format(names)).collect();
        format!("{name}({})", args.join(", "))
    }
}

/// What a subquery in an expression computes.
#[derive(Clone, Debug, PartialEq)]
pub enum SubqueryKind {
    /// The single value of its single row (NULL without rows; 21000 with more than one).
    Scalar,
    /// Whether it returns any row.
    Exists,
    /// Whether the operand (an expression over the enclosing row) equals one of its values,
    /// with `IN`'s three-valued logic.
    In(Expr),
    /// An array of the values of its single column (`ARRAY(SELECT ...)`).
    Array,
    /// The rows of a LATERAL FROM item, run for each row of the items before it: only the
    /// right side of [`Node::Lateral`] holds one, never an expression that is evaluated.
    Lateral,
}

/// A subquery inside an expression. Its plan refers to the rows of enclosing queries through
/// [`Expr::Outer`]; it runs once when it refers to none, else once per enclosing row.
#[derive(Clone, Debug, PartialEq)]
pub struct Subquery {
    pub kind: SubqueryKind,
    pub plan: Node,
}

/// A bound expression. Columns are indexes into the input row.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A constant.
    Constant(Value),
    /// A column of the input row.
    Column(usize),
    /// A column of an enclosing query's row, `depth` levels out (1: the query whose expression
    /// holds this subquery), substituted by a constant before the subquery runs.
    Outer {
        depth: usize,
        index: usize,
    },
    /// A statement parameter `$n` (0-based), replaced by a constant before execution.
    Param(usize),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(CmpOp, Box<Expr>, Box<Expr>),
    /// Arithmetic with its result type (whose range is checked).
    Arith(ArithOp, Box<Expr>, Box<Expr>, DataType),
    /// Unary minus with its result type.
    Neg(Box<Expr>, DataType),
    /// Text concatenation `||` (operands are rendered as text).
    Concat(Box<Expr>, Box<Expr>),
    IsNull(Box<Expr>),
    /// `a IS DISTINCT FROM b`: inequality where NULL equals NULL (never NULL itself).
    IsDistinct(Box<Expr>, Box<Expr>),
    /// `a IN (list)` with three-valued logic: true on a match, else NULL if `a` or any item is
    /// NULL, else false.
    InList(Box<Expr>, Vec<Expr>),
    /// Searched CASE: the result of the first condition that is true, else `otherwise` (NULL
    /// when absent). Every result has the CASE's type (the binder adds casts).
    Case {
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    /// The first non-NULL argument (all of one type).
    Coalesce(Vec<Expr>),
    Function(Function, Vec<Expr>),
    Cast(Box<Expr>, DataType),
    Subquery(Box<Subquery>),
}

impl Expr {
    /// Applies `f` to each direct child expression of this scope (not to the expressions
    /// inside a subquery's plan, which read other rows; a subquery's IN operand is a child).
    pub fn map_children(self, f: &mut impl FnMut(Expr) -> Expr) -> Expr {
        let mut t = |e: Box<Expr>| Box::new(f(*e));
        match self {
            Expr::Not(a) => Expr::Not(t(a)),
            Expr::And(a, b) => Expr::And(t(a), t(b)),
            Expr::Or(a, b) => Expr::Or(t(a), t(b)),
            Expr::Compare(op, a, b) => Expr::Compare(op, t(a), t(b)),
            Expr::Arith(op, a, b, ty) => Expr::Arith(op, t(a), t(b), ty),
            Expr::Neg(a, ty) => Expr::Neg(t(a), ty),
            Expr::Concat(a, b) => Expr::Concat(t(a), t(b)),
            Expr::IsNull(a) => Expr::IsNull(t(a)),
            Expr::IsDistinct(a, b) => Expr::IsDistinct(t(a), t(b)),
            Expr::Cast(a, ty) => Expr::Cast(t(a), ty),
            Expr::InList(a, list) => {
                let a = t(a);
                Expr::InList(a, list.into_iter().map(&mut *f).collect())
            }
            Expr::Case { whens, otherwise } => {
                let whens = whens.into_iter().map(|(c, r)| (f(c), f(r))).collect();
                Expr::Case {
                    whens,
                    otherwise: otherwise.map(|e| Box::new(f(*e))),
                }
            }
            Expr::Coalesce(args) => Expr::Coalesce(args.into_iter().map(f).collect()),
            Expr::Function(func, args) => Expr::Function(func, args.into_iter().map(f).collect()),
            Expr::Subquery(s) => {
                let Subquery { kind, plan } = *s;
                let kind = match kind {
                    SubqueryKind::In(e) => SubqueryKind::In(f(e)),
                    k => k,
                };
                Expr::Subquery(Box::new(Subquery { kind, plan }))
            }
            e @ (Expr::Constant(_) | Expr::Column(_) | Expr::Outer { .. } | Expr::Param(_)) => e,
        }
    }

    /// The direct child expressions of this scope (see [`Expr::map_children`]).
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Not(a) | Expr::Neg(a, _) | Expr::IsNull(a) | Expr::Cast(a, _) => vec![a],
            Expr::And(a, b)
            | Expr::Or(a, b)
            | Expr::Compare(_, a, b)
            | Expr::Arith(_, a, b, _)
            | Expr::Concat(a, b)
            | Expr::IsDistinct(a, b) => vec![a, b],
            Expr::InList(a, list) => std::iter::once(a.as_ref()).chain(list).collect(),
            Expr::Case { whens, otherwise } => whens
                .iter()
                .flat_map(|(c, r)| [c, r])
                .chain(otherwise.as_deref())
                .collect(),
            Expr::Coalesce(args) | Expr::Function(_, args) => args.iter().collect(),
            Expr::Subquery(s) => match &s.kind {
                SubqueryKind::In(e) => vec![e],
                _ => vec![],
            },
            Expr::Constant(_) | Expr::Column(_) | Expr::Outer { .. } | Expr::Param(_) => vec![],
        }
    }

    /// Transforms the expression bottom-up, including the expressions of subquery plans
    /// (parameters are substituted everywhere).
    pub fn transform(self, f: &mut impl FnMut(Expr) -> Expr) -> Expr {
        let e = self.map_children(&mut |c| c.transform(f));
        let e = match e {
            Expr::Subquery(s) => {
                let Subquery { kind, plan } = *s;
                let plan = plan.map_exprs(&mut |e| e.transform(f));
                Expr::Subquery(Box::new(Subquery { kind, plan }))
            }
            e => e,
        };
        f(e)
    }

    /// Whether the expression (in this scope) contains a subquery.
    pub fn has_subquery(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| {
            found |= matches!(e, Expr::Subquery(_))
                || matches!(e, Expr::Function(f, _) if f.runs_async())
        });
        found
    }

    /// Whether the expression reads no input column and runs no subquery (constants,
    /// parameters and outer references only).
    pub fn is_constant(&self) -> bool {
        let mut constant = true;
        self.walk(&mut |e| constant &= !matches!(e, Expr::Column(_) | Expr::Subquery(_)));
        constant
    }

    /// Visits every node of the expression in this scope (not inside subquery plans).
    pub fn walk(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        for c in self.children() {
            c.walk(f);
        }
    }

    /// The input columns the expression reads (in this scope).
    pub fn columns_used(&self) -> Vec<usize> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Column(i) = e {
                out.push(*i);
            }
        });
        out
    }

    /// Splits a conjunction into its conjuncts.
    pub fn into_conjuncts(self) -> Vec<Expr> {
        match self {
            Expr::And(a, b) => {
                let mut v = a.into_conjuncts();
                v.extend(b.into_conjuncts());
                v
            }
            e => vec![e],
        }
    }

    /// Joins conjuncts with AND; `None` if there are none.
    pub fn and_all(conjuncts: Vec<Expr>) -> Option<Expr> {
        conjuncts
            .into_iter()
            .reduce(|a, b| Expr::And(Box::new(a), Box::new(b)))
    }

    /// Formats the expression with the input's column names.
    pub fn format(&self, names: &[String]) -> String {
        let f = |e: &Expr| e.format_operand(names);
        match self {
            Expr::Constant(Value::Text(s)) => format!("'{}'", s.replace('\'', "''")),
            Expr::Constant(Value::Jsonb(j)) => {
                format!("'{}'::jsonb", j.to_string().replace('\'', "''"))
            }
            Expr::Constant(v) => v.to_string(),
            Expr::Column(i) => names.get(*i).cloned().unwrap_or_else(|| format!("#{i}")),
            Expr::Outer { depth, index } => format!("outer{depth}.#{index}"),
            Expr::Param(i) => format!("${}", i + 1),
            Expr::Not(a) => match a.as_ref() {
                Expr::IsNull(a) => format!("{} IS NOT NULL", f(a)),
                a => format!("NOT {}", f(a)),
            },
            Expr::And(a, b) => format!("{} AND {}", f(a), f(b)),
            Expr::Or(a, b) => format!("{} OR {}", f(a), f(b)),
            Expr::Compare(op, a, b) => format!("{} {} {}", f(a), op.symbol(), f(b)),
            Expr::Arith(op, a, b, _) => format!("{} {} {}", f(a), op.symbol(), f(b)),
            Expr::Neg(a, _) => format!("-{}", f(a)),
            Expr::Concat(a, b) => format!("{} || {}", f(a), f(b)),
            Expr::IsNull(a) => format!("{} IS NULL", f(a)),
            Expr::IsDistinct(a, b) => format!("{} IS DISTINCT FROM {}", f(a), f(b)),
            Expr::InList(a, list) => {
                let items: Vec<String> = list.iter().map(|e| e.format(names)).collect();
                format!("{} IN ({})", f(a), items.join(", "))
            }
            Expr::Case { whens, otherwise } => {
                let mut s = "CASE".to_string();
                for (c, r) in whens {
                    let _ = write!(s, " WHEN {} THEN {}", c.format(names), r.format(names));
                }
                if let Some(e) = otherwise {
                    let _ = write!(s, " ELSE {}", e.format(names));
                }
                s + " END"
            }
            Expr::Coalesce(args) => format!("coalesce({})", format_list(args, names)),
            Expr::Function(Function::Jsonb(j), args) if j.is_operator() && args.len() == 2 => {
                format!("{} {} {}", f(&args[0]), j.name(), f(&args[1]))
            }
            Expr::Function(func, args) => format!("{}({})", func.name(), format_list(args, names)),
            Expr::Cast(a, ty) => format!("{}::{}", f(a), ty.short_name()),
            Expr::Subquery(s) => {
                let plan = s.plan.explain_inline();
                match &s.kind {
                    SubqueryKind::Scalar => format!("({plan})"),
                    SubqueryKind::Exists => format!("EXISTS ({plan})"),
                    SubqueryKind::In(e) => format!("{} IN ({plan})", f(e)),
                    SubqueryKind::Array => format!("ARRAY({plan})"),
                    SubqueryKind::Lateral => format!("LATERAL ({plan})"),
                }
            }
        }
    }

    fn format_operand(&self, names: &[String]) -> String {
        match self {
            Expr::Constant(_)
            | Expr::Column(_)
            | Expr::Outer { .. }
            | Expr::Param(_)
            | Expr::Cast(..)
            | Expr::Function(..)
            | Expr::Coalesce(_)
            | Expr::Subquery(_)
            | Expr::Case { .. } => self.format(names),
            e => format!("({})", e.format(names)),
        }
    }
}

fn format_list(args: &[Expr], names: &[String]) -> String {
    let items: Vec<String> = args.iter().map(|e| e.format(names)).collect();
    items.join(", ")
}

/// One end of a key span: the key of `values` (a primary-key prefix), or just past every key
/// with that prefix when `after` is set.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanBound {
    /// Values of the leading primary-key columns (constant expressions).
    pub values: Vec<Expr>,
    /// Past every key that starts with `values` (the prefix end) instead of at it.
    pub after: bool,
}

/// A key span `[start, end)` of a table's primary index.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub start: SpanBound,
    pub end: SpanBound,
}

impl Span {
    /// The whole table.
    pub fn full() -> Span {
        Span {
            start: SpanBound {
                values: vec![],
                after: false,
            },
            end: SpanBound {
                values: vec![],
                after: true,
            },
        }
    }
}

/// A sort key: an input column, descending, NULLs first.
#[derive(Clone, Debug, PartialEq)]
pub struct SortKey {
    pub column: usize,
    pub descending: bool,
    pub nulls_first: bool,
}

/// The statistic a variance-family aggregate computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistic {
    /// var_samp (also `variance`): the sum of squared deviations over n - 1.
    VarSamp,
    /// var_pop: over n.
    VarPop,
    /// stddev_samp (also `stddev`): the square root of var_samp.
    StddevSamp,
    /// stddev_pop: the square root of var_pop.
    StddevPop,
}

impl Statistic {
    /// The function's SQL name.
    pub fn name(self) -> &'static str {
        match self {
            Statistic::VarSamp => "var_samp",
            Statistic::VarPop => "var_pop",
            Statistic::StddevSamp => "stddev_samp",
            Statistic::StddevPop => "stddev_pop",
        }
    }

    /// Whether it divides by n - 1 (NULL for a single value) rather than n.
    pub fn is_sample(self) -> bool {
        matches!(self, Statistic::VarSamp | Statistic::StddevSamp)
    }

    /// Whether it is a standard deviation (the square root of the variance).
    pub fn is_stddev(self) -> bool {
        matches!(self, Statistic::StddevSamp | Statistic::StddevPop)
    }
}

/// An `ORDER BY` item inside an aggregate call (`string_agg(x, ',' ORDER BY y DESC)`).
#[derive(Clone, Debug, PartialEq)]
pub struct AggregateOrder {
    pub expr: Expr,
    pub descending: bool,
    pub nulls_first: bool,
}

/// An aggregate function. The plain variants are functions over their arguments' non-NULL
/// values; `Filter`, `Distinct` and `Ordered` wrap one (in that order, outermost first).
#[derive(Clone, Debug, PartialEq)]
pub enum Aggregate {
    /// count(*).
    CountStar,
    /// count(expr): non-NULL values.
    Count(Expr),
    Sum(Expr, DataType),
    /// avg of a number (double precision for floats, numeric for the exact types) or of
    /// intervals.
    Avg(Expr, DataType),
    Min(Expr),
    Max(Expr),
    /// bool_and (and `every`): true when every non-NULL value is.
    BoolAnd(Expr),
    /// bool_or: true when some value is.
    BoolOr(Expr),
    /// string_agg(value, delimiter): the non-NULL values, each after the first preceded by
    /// its row's delimiter (none when that is NULL).
    StringAgg(Expr, Expr),
    /// array_agg(value): every value, NULLs included, as an array (NULL without rows).
    ArrayAgg(Expr),
    /// A variance or standard deviation, of the result type (numeric for the exact types,
    /// double precision for floats).
    Stat(Statistic, Expr, DataType),
    /// jsonb_agg(value): the values (NULLs too) as a jsonb array, as `to_jsonb` converts them.
    JsonbAgg(Expr),
    /// jsonb_object_agg(key, value): a jsonb object (a NULL key is 22023, the last of
    /// duplicate keys wins).
    JsonbObjectAgg(Expr, Expr),
    /// The aggregate over the distinct values of its arguments whose first argument is not
    /// NULL (`count(DISTINCT x)`).
    Distinct(Box<Aggregate>),
    /// The aggregate over the rows for which the predicate is true (`FILTER (WHERE ...)`).
    Filter(Box<Aggregate>, Expr),
    /// The aggregate fed its rows in this order (`ORDER BY` inside the call); input order
    /// breaks ties.
    Ordered(Box<Aggregate>, Vec<AggregateOrder>),
}

impl Aggregate {
    /// The SQL name of the function.
    pub fn name(&self) -> &'static str {
        match self {
            Aggregate::CountStar | Aggregate::Count(_) => "count",
            Aggregate::Sum(..) => "sum",
            Aggregate::Avg(..) => "avg",
            Aggregate::Min(_) => "min",
            Aggregate::Max(_) => "max",
            Aggregate::BoolAnd(_) => "bool_and",
            Aggregate::BoolOr(_) => "bool_or",
            Aggregate::StringAgg(..) => "string_agg",
            Aggregate::JsonbAgg(_) => "jsonb_agg",
            Aggregate::JsonbObjectAgg(..) => "jsonb_object_agg",
            Aggregate::ArrayAgg(_) => "array_agg",
            Aggregate::Stat(s, ..) => s.name(),
            Aggregate::Distinct(a) | Aggregate::Filter(a, _) | Aggregate::Ordered(a, _) => a.name(),
        }
    }

    /// The argument expressions of the function (none for count(*)).
    pub fn args(&self) -> Vec<&Expr> {
        match self {
            Aggregate::CountStar => vec![],
            Aggregate::Count(e)
            | Aggregate::Sum(e, _)
            | Aggregate::Avg(e, _)
            | Aggregate::Min(e)
            | Aggregate::Max(e)
            | Aggregate::BoolAnd(e)
            | Aggregate::BoolOr(e)
            | Aggregate::JsonbAgg(e)
            | Aggregate::ArrayAgg(e)
            | Aggregate::Stat(_, e, _) => vec![e],
            Aggregate::StringAgg(e, d) | Aggregate::JsonbObjectAgg(e, d) => vec![e, d],
            Aggregate::Distinct(a) | Aggregate::Filter(a, _) | Aggregate::Ordered(a, _) => a.args(),
        }
    }

    /// Every expression the aggregate evaluates: arguments, FILTER and ORDER BY.
    pub fn exprs(&self) -> Vec<&Expr> {
        match self {
            Aggregate::Distinct(a) => a.exprs(),
            Aggregate::Filter(a, f) => {
                let mut v = a.exprs();
                v.push(f);
                v
            }
            Aggregate::Ordered(a, keys) => {
                let mut v = a.exprs();
                v.extend(keys.iter().map(|k| &k.expr));
                v
            }
            a => a.args(),
        }
    }

    fn format(&self, names: &[String]) -> String {
        match self {
            Aggregate::Filter(a, f) => {
                format!("{} FILTER (WHERE {})", a.format(names), f.format(names))
            }
            a => a.format_call(names, false, &[]),
        }
    }

    fn format_call(&self, names: &[String], distinct: bool, order: &[AggregateOrder]) -> String {
        match self {
            Aggregate::Distinct(a) => a.format_call(names, true, order),
            Aggregate::Ordered(a, keys) => a.format_call(names, distinct, keys),
            Aggregate::Filter(..) => self.format(names),
            Aggregate::CountStar => "count(*)".into(),
            a => {
                let args: Vec<String> = a.args().iter().map(|e| e.format(names)).collect();
                let mut s = format!("{}(", a.name());
                if distinct {
                    s.push_str("DISTINCT ");
                }
                s.push_str(&args.join(", "));
                if !order.is_empty() {
                    let _ = write!(s, " ORDER BY {}", format_order(order, names));
                }
                s + ")"
            }
        }
    }
}

/// What a window function computes over its partition.
#[derive(Clone, Debug, PartialEq)]
pub enum WindowFunc {
    /// row_number(): the row's position in its partition, from 1.
    RowNumber,
    /// rank(): the position of the row's first peer (rows with equal ORDER BY values).
    Rank,
    /// dense_rank(): the number of distinct peer groups up to the row's.
    DenseRank,
    /// ntile(n): the bucket from 1 to n that the row falls in, the partition split as evenly
    /// as possible (earlier buckets one row larger).
    Ntile(Expr),
    /// lag(value, offset, default) (`lead` with `lead`): the value at `offset` rows before
    /// (after) the row in its partition, else the default (NULL when absent).
    Lag {
        value: Expr,
        offset: Expr,
        default: Expr,
        lead: bool,
    },
    /// first_value(value): of the partition's first row.
    FirstValue(Expr),
    /// last_value(value): of the row's last peer (the end of the default frame).
    LastValue(Expr),
    /// An aggregate over the default frame: the partition's rows up to the row's last peer.
    Aggregate(Aggregate),
}

impl WindowFunc {
    /// The function's SQL name.
    pub fn name(&self) -> &'static str {
        match self {
            WindowFunc::RowNumber => "row_number",
            WindowFunc::Rank => "rank",
            WindowFunc::DenseRank => "dense_rank",
            WindowFunc::Ntile(_) => "ntile",
            WindowFunc::Lag { lead: false, .. } => "lag",
            WindowFunc::Lag { lead: true, .. } => "lead",
            WindowFunc::FirstValue(_) => "first_value",
            WindowFunc::LastValue(_) => "last_value",
            WindowFunc::Aggregate(a) => a.name(),
        }
    }

    /// The expressions it evaluates over the rows.
    pub fn exprs(&self) -> Vec<&Expr> {
        match self {
            WindowFunc::RowNumber | WindowFunc::Rank | WindowFunc::DenseRank => vec![],
            WindowFunc::Ntile(e) | WindowFunc::FirstValue(e) | WindowFunc::LastValue(e) => {
                vec![e]
            }
            WindowFunc::Lag {
                value,
                offset,
                default,
                ..
            } => vec![value, offset, default],
            WindowFunc::Aggregate(a) => a.exprs(),
        }
    }

    fn map_exprs(self, f: &mut impl FnMut(Expr) -> Expr) -> WindowFunc {
        match self {
            WindowFunc::Ntile(e) => WindowFunc::Ntile(f(e)),
            WindowFunc::FirstValue(e) => WindowFunc::FirstValue(f(e)),
            WindowFunc::LastValue(e) => WindowFunc::LastValue(f(e)),
            WindowFunc::Lag {
                value,
                offset,
                default,
                lead,
            } => {
                let value = f(value);
                let offset = f(offset);
                WindowFunc::Lag {
                    value,
                    offset,
                    default: f(default),
                    lead,
                }
            }
            WindowFunc::Aggregate(a) => WindowFunc::Aggregate(map_aggregate(a, f)),
            w => w,
        }
    }
}

/// The rows of its partition a window aggregate, first_value and last_value read for a row:
/// from the partition's first row, to
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// the row's last peer (the default, `RANGE UNBOUNDED PRECEDING`);
    ToPeers,
    /// the row itself (`ROWS UNBOUNDED PRECEDING`);
    ToRow,
    /// the partition's last row (`... AND UNBOUNDED FOLLOWING`).
    Partition,
    /// Bounds of a frame with offsets or a CURRENT ROW start, counted in rows (`groups`
    /// false, ROWS) or in peer groups (GROUPS; RANGE frames whose bounds are CURRENT ROW or
    /// UNBOUNDED are the same as GROUPS frames with them).
    Bounded {
        groups: bool,
        start: FrameBound,
        end: FrameBound,
    },
}

/// One end of a [`Frame::Bounded`] frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameBound {
    UnboundedPreceding,
    Preceding(u64),
    CurrentRow,
    Following(u64),
    UnboundedFollowing,
}

impl FrameBound {
    fn sql(self) -> String {
        match self {
            FrameBound::UnboundedPreceding => "UNBOUNDED PRECEDING".into(),
            FrameBound::Preceding(n) => format!("{n} PRECEDING"),
            FrameBound::CurrentRow => "CURRENT ROW".into(),
            FrameBound::Following(n) => format!("{n} FOLLOWING"),
            FrameBound::UnboundedFollowing => "UNBOUNDED FOLLOWING".into(),
        }
    }
}

/// A window function call: the function, its partition, its order within the partition and
/// its frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub func: WindowFunc,
    pub partition_by: Vec<Expr>,
    pub order_by: Vec<AggregateOrder>,
    pub frame: Frame,
}

impl Window {
    /// Every expression the call evaluates.
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut v = self.func.exprs();
        v.extend(&self.partition_by);
        v.extend(self.order_by.iter().map(|k| &k.expr));
        v
    }

    fn map_exprs(self, f: &mut impl FnMut(Expr) -> Expr) -> Window {
        let func = self.func.map_exprs(f);
        let partition_by = self.partition_by.into_iter().map(&mut *f).collect();
        let order_by = self
            .order_by
            .into_iter()
            .map(|k| AggregateOrder {
                expr: f(k.expr),
                ..k
            })
            .collect();
        Window {
            func,
            partition_by,
            order_by,
            frame: self.frame,
        }
    }

    fn format(&self, names: &[String]) -> String {
        let call = match &self.func {
            WindowFunc::Aggregate(a) => a.format(names),
            func => {
                let args: Vec<String> = func.exprs().iter().map(|e| e.format(names)).collect();
                format!("{}({})", func.name(), args.join(", "))
            }
        };
        let mut over = Vec::new();
        if !self.partition_by.is_empty() {
            over.push(format!(
                "PARTITION BY {}",
                format_list(&self.partition_by, names)
            ));
        }
        if !self.order_by.is_empty() {
            over.push(format!("ORDER BY {}", format_order(&self.order_by, names)));
        }
        match self.frame {
            Frame::ToPeers => {}
            Frame::ToRow => over.push("ROWS UNBOUNDED PRECEDING".into()),
            Frame::Partition => {
                over.push("ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING".into())
            }
            Frame::Bounded { groups, start, end } => over.push(format!(
                "{} BETWEEN {} AND {}",
                if groups { "GROUPS" } else { "ROWS" },
                start.sql(),
                end.sql()
            )),
        }
        format!("{call} OVER ({})", over.join(" "))
    }
}

/// Formats ORDER BY items of an aggregate call or a window.
fn format_order(keys: &[AggregateOrder], names: &[String]) -> String {
    let keys: Vec<String> = keys
        .iter()
        .map(|k| {
            let dir = if k.descending { " DESC" } else { "" };
            let nulls = match (k.nulls_first, k.descending) {
                (true, false) => " NULLS FIRST",
                (false, true) => " NULLS LAST",
                _ => "",
            };
            format!("{}{dir}{nulls}", k.expr.format(names))
        })
        .collect();
    keys.join(", ")
}

/// How a join treats rows of its left input without a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    /// Only matching pairs.
    Inner,
    /// Matching pairs, and each unmatched left row once with NULLs for the right columns.
    Left,
    /// Matching pairs, and each unmatched right row once with NULLs for the left columns.
    Right,
    /// Matching pairs, and each unmatched row of either side once, NULL-extended.
    Full,
}

impl JoinKind {
    /// Whether unmatched left rows are kept.
    pub fn keeps_left(self) -> bool {
        matches!(self, JoinKind::Left | JoinKind::Full)
    }

    /// Whether unmatched right rows are kept.
    pub fn keeps_right(self) -> bool {
        matches!(self, JoinKind::Right | JoinKind::Full)
    }
}

/// A set operation between two queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOp {
    Union,
    Intersect,
    Except,
}

impl SetOp {
    /// The SQL keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            SetOp::Union => "Union",
            SetOp::Intersect => "Intersect",
            SetOp::Except => "Except",
        }
    }
}

/// A query operator. Each node emits rows of the columns [`Node::columns`] describes.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// Reads one row by its whole primary key.
    Get { table: Arc<Table>, key: Vec<Expr> },
    /// Reads the rows of a primary-key span, in key order.
    Scan {
        table: Arc<Table>,
        span: Span,
        /// The columns the nodes above read, when not all of them (`None`: every column).
        /// The others are not decoded and are NULL in the rows emitted.
        read: Option<Vec<bool>>,
    },
    /// Reads the entries of a span of a secondary index, in index order, and emits the rows
    /// they point to (whole table rows, read by primary key). With `covering` (an index-only
    /// scan) the rows come from the entries alone: columns the index does not cover are NULL,
    /// and no node above reads them.
    IndexScan {
        table: Arc<Table>,
        index: Index,
        span: Span,
        covering: bool,
    },
    /// Constant rows.
    Values {
        columns: Vec<Column>,
        rows: Vec<Vec<Expr>>,
    },
    /// `generate_series(start, stop, step)` in FROM: the values from `start` while not past
    /// `stop`, by `step` (expressions without columns, evaluated when the node runs; NULL
    /// gives no rows), of the column's type: an integer, numeric, timestamp or timestamptz
    /// (then `step` is an interval).
    Series {
        start: Expr,
        stop: Expr,
        step: Expr,
        column: Column,
    },
    /// A jsonb table function in FROM (`jsonb_each(j)`...) over its argument (an expression
    /// without columns, evaluated when the node runs; NULL gives no rows).
    JsonbTable {
        func: JsonbTable,
        arg: Expr,
        columns: Vec<Column>,
    },
    /// Emits the rows for which the predicate is true.
    Filter { source: Box<Node>, predicate: Expr },
    /// Evaluates expressions over each row.
    Projection {
        source: Box<Node>,
        exprs: Vec<Expr>,
        columns: Vec<Column>,
    },
    /// Joins two inputs: emits the left columns then the right columns of each pair for which
    /// `on` (over that concatenated row) is true. With `keys` (pairs of a left column and a
    /// right column, by position in each input) the right input is hashed on those columns
    /// and only pairs with equal, non-NULL keys are tried; without, every pair is (nested loop).
    Join {
        left: Box<Node>,
        right: Box<Node>,
        kind: JoinKind,
        on: Option<Expr>,
        keys: Vec<(usize, usize)>,
    },
    /// An INNER or LEFT join whose right input is a table read by primary key: for each
    /// batch of left rows, the right rows whose whole primary key equals the left columns
    /// `lookup` (one per key column, in key order) are read with one request per range, and
    /// joined as [`Node::Join`] joins them (`keys` and `on` over the concatenated row). `right`
    /// is that table's scan (under a filter the looked-up rows must pass): once the left input
    /// has returned `exec::lookup_join::LOOKUP_ROWS` rows it is read whole and the join goes on as a hash join,
    /// so a left input larger than expected costs no more than a hash join would.
    LookupJoin {
        left: Box<Node>,
        right: Box<Node>,
        table: Arc<Table>,
        lookup: Vec<usize>,
        kind: JoinKind,
        on: Option<Expr>,
        keys: Vec<(usize, usize)>,
    },
    /// Emits the first of each set of equal rows (NULLs equal), in input order.
    Distinct { source: Box<Node> },
    /// Emits the first row of each run of rows with equal values in `columns` (NULLs equal):
    /// `SELECT DISTINCT ON`, whose input is sorted so that such rows are adjacent.
    DistinctOn {
        source: Box<Node>,
        columns: Vec<usize>,
    },
    /// UNION, INTERSECT or EXCEPT of two inputs with the same column types; without `all`,
    /// duplicates are removed; with it, INTERSECT and EXCEPT count multiplicities. Emits the
    /// left input's columns.
    SetOp {
        op: SetOp,
        all: bool,
        left: Box<Node>,
        right: Box<Node>,
    },
    /// The rows of a recursive WITH query: `anchor`'s, then those `recursive` (whose
    /// [`Node::WorkTable`] reads the rows of the previous round) returns, round after round,
    /// until a round returns no new row; without `all`, rows already returned are dropped.
    RecursiveCte {
        anchor: Box<Node>,
        recursive: Box<Node>,
        all: bool,
    },
    /// The rows the previous round of the enclosing [`Node::RecursiveCte`] returned.
    WorkTable { columns: Vec<Column> },
    /// Sorts all rows (buffers them).
    Order {
        source: Box<Node>,
        keys: Vec<SortKey>,
    },
    /// Skips `offset` rows then emits at most `limit` (constant expressions), and then the
    /// rows that follow with the values of the last one in the `ties` columns (`FETCH FIRST n
    /// ROWS WITH TIES` over sorted input; no columns for a plain limit).
    Limit {
        source: Box<Node>,
        limit: Option<Expr>,
        offset: Option<Expr>,
        ties: Vec<usize>,
    },
    /// Set-returning functions (PostgreSQL's ProjectSet): for each input row, as many rows
    /// as its longest function returns, each the input row followed by one value per
    /// function (NULL past a shorter one's end) and, with `ordinality`, the row's number
    /// from 1; no row when every function returns none. `columns` are the output columns.
    ProjectSet {
        source: Box<Node>,
        functions: Vec<SetFunction>,
        ordinality: bool,
        columns: Vec<Column>,
    },
    /// Window functions: emits each input row (all of them are read first) followed by the
    /// value of each window function for it.
    Window {
        source: Box<Node>,
        windows: Vec<Window>,
        columns: Vec<Column>,
    },
    /// Groups rows by `group_by` and computes aggregates: emits the group columns then the
    /// aggregates. Without GROUP BY it emits exactly one row.
    Aggregate {
        source: Box<Node>,
        group_by: Vec<Expr>,
        aggregates: Vec<Aggregate>,
        columns: Vec<Column>,
    },
    /// A join with a LATERAL item: for each row of `left`, the rows of the plan in `right` —
    /// an [`Expr::Subquery`] of kind [`SubqueryKind::Lateral`], whose plan refers to the left
    /// row as its enclosing row (`Expr::Outer` at depth 1) — follow it, where `on` holds of the
    /// joined row. A LEFT join keeps a left row that has none, NULL-extended. Holding the plan
    /// as a subquery makes every walk over expressions see its outer depths shifted by one.
    Lateral {
        left: Box<Node>,
        right: Expr,
        kind: JoinKind,
        on: Option<Expr>,
    },
}

impl Node {
    /// The plan of a [`Node::Lateral`]'s right side.
    pub fn lateral_plan(right: &Expr) -> Option<&Node> {
        match right {
            Expr::Subquery(s) if s.kind == SubqueryKind::Lateral => Some(&s.plan),
            _ => None,
        }
    }

    /// Whether the plan reads the row of the query `depth` levels out (1: the query whose
    /// expression or LATERAL item holds this plan).
    pub fn refers_to(&self, depth: usize) -> bool {
        let mut found = false;
        self.walk_exprs(&mut |e| match e {
            Expr::Outer { depth: d, .. } if *d == depth => found = true,
            Expr::Subquery(s) => found |= s.plan.refers_to(depth + 1),
            _ => {}
        });
        found
    }

    /// Removes one enclosing level from the plan's outer references: a plan bound with an
    /// extra enclosing scope it turned out not to read (references deeper than that level
    /// move in by one).
    pub fn without_outer_level(self) -> Node {
        fn shift(e: Expr, level: usize) -> Expr {
            match e {
                Expr::Outer { depth, index } if depth > level => Expr::Outer {
                    depth: depth - 1,
                    index,
                },
                Expr::Subquery(s) => {
                    let Subquery { kind, plan } = *s;
                    let kind = match kind {
                        SubqueryKind::In(op) => SubqueryKind::In(shift(op, level)),
                        k => k,
                    };
                    let plan = plan.map_exprs(&mut |e| shift(e, level + 1));
                    Expr::Subquery(Box::new(Subquery { kind, plan }))
                }
                e => e.map_children(&mut |c| shift(c, level)),
            }
        }
        self.map_exprs(&mut |e| shift(e, 1))
    }

    /// The columns of the rows the node emits.
    pub fn columns(&self) -> Vec<Column> {
        match self {
            Node::Get { table, .. } | Node::Scan { table, .. } | Node::IndexScan { table, .. } => {
                table
                    .columns
                    .iter()
                    .map(|c| Column {
                        name: c.name.clone(),
                        data_type: c.data_type,
                    })
                    .collect()
            }
            Node::Series { column, .. } => vec![column.clone()],
            Node::JsonbTable { columns, .. } => columns.clone(),
            Node::Values { columns, .. }
            | Node::WorkTable { columns }
            | Node::Projection { columns, .. }
            | Node::Window { columns, .. }
            | Node::ProjectSet { columns, .. }
            | Node::Aggregate { columns, .. } => columns.clone(),
            Node::Filter { source, .. }
            | Node::Order { source, .. }
            | Node::Distinct { source }
            | Node::DistinctOn { source, .. }
            | Node::Limit { source, .. } => source.columns(),
            Node::SetOp { left, .. } => left.columns(),
            Node::RecursiveCte { anchor, .. } => anchor.columns(),
            Node::Join { left, right, .. } | Node::LookupJoin { left, right, .. } => {
                let mut c = left.columns();
                c.extend(right.columns());
                c
            }
            Node::Lateral { left, right, .. } => {
                let mut c = left.columns();
                c.extend(
                    Node::lateral_plan(right)
                        .map(Node::columns)
                        .unwrap_or_default(),
                );
                c
            }
        }
    }

    fn names(&self) -> Vec<String> {
        self.columns().into_iter().map(|c| c.name).collect()
    }

    /// Transforms the tree bottom-up.
    pub fn transform<E>(self, f: &mut impl FnMut(Node) -> Result<Node, E>) -> Result<Node, E> {
        let node = self.try_map_inputs(|n| n.transform(f))?;
        f(node)
    }

    /// Applies `f` to each direct input of the node (none for a leaf), keeping the rest.
    pub fn try_map_inputs<E>(self, mut f: impl FnMut(Node) -> Result<Node, E>) -> Result<Node, E> {
        let mut t = |n: Box<Node>| f(*n).map(Box::new);
        Ok(match self {
            Node::Filter { source, predicate } => Node::Filter {
                source: t(source)?,
                predicate,
            },
            Node::Projection {
                source,
                exprs,
                columns,
            } => Node::Projection {
                source: t(source)?,
                exprs,
                columns,
            },
            Node::Order { source, keys } => Node::Order {
                source: t(source)?,
                keys,
            },
            Node::Limit {
                source,
                limit,
                offset,
                ties,
            } => Node::Limit {
                source: t(source)?,
                limit,
                offset,
                ties,
            },
            Node::Aggregate {
                source,
                group_by,
                aggregates,
                columns,
            } => Node::Aggregate {
                source: t(source)?,
                group_by,
                aggregates,
                columns,
            },
            Node::Join {
                left,
                right,
                kind,
                on,
                keys,
            } => Node::Join {
                left: t(left)?,
                right: t(right)?,
                kind,
                on,
                keys,
            },
            Node::LookupJoin {
                left,
                right,
                table,
                lookup,
                kind,
                on,
                keys,
            } => Node::LookupJoin {
                left: t(left)?,
                right: t(right)?,
                table,
                lookup,
                kind,
                on,
                keys,
            },
            Node::Distinct { source } => Node::Distinct { source: t(source)? },
            Node::Lateral {
                left,
                right,
                kind,
                on,
            } => Node::Lateral {
                left: t(left)?,
                right,
                kind,
                on,
            },
            Node::Window {
                source,
                windows,
                columns,
            } => Node::Window {
                source: t(source)?,
                windows,
                columns,
            },
            Node::ProjectSet {
                source,
                functions,
                ordinality,
                columns,
            } => Node::ProjectSet {
                source: t(source)?,
                functions,
                ordinality,
                columns,
            },
            Node::DistinctOn { source, columns } => Node::DistinctOn {
                source: t(source)?,
                columns,
            },
            Node::RecursiveCte {
                anchor,
                recursive,
                all,
            } => Node::RecursiveCte {
                anchor: t(anchor)?,
                recursive: t(recursive)?,
                all,
            },
            Node::SetOp {
                op,
                all,
                left,
                right,
            } => Node::SetOp {
                op,
                all,
                left: t(left)?,
                right: t(right)?,
            },
            n @ (Node::Get { .. }
            | Node::Scan { .. }
            | Node::IndexScan { .. }
            | Node::WorkTable { .. }
            | Node::Series { .. }
            | Node::JsonbTable { .. }
            | Node::Values { .. }) => n,
        })
    }

    /// Transforms every expression in the tree.
    pub fn map_exprs(self, f: &mut impl FnMut(Expr) -> Expr) -> Node {
        let r: Result<Node, ()> = self.transform(&mut |n| {
            Ok(match n {
                Node::Get { table, key } => Node::Get {
                    table,
                    key: key.into_iter().map(&mut *f).collect(),
                },
                Node::Scan { table, span, read } => Node::Scan {
                    table,
                    span: map_span(span, f),
                    read,
                },
                Node::IndexScan {
                    table,
                    index,
                    span,
                    covering,
                } => Node::IndexScan {
                    table,
                    index,
                    span: map_span(span, f),
                    covering,
                },
                Node::Values { columns, rows } => Node::Values {
                    columns,
                    rows: rows
                        .into_iter()
                        .map(|r| r.into_iter().map(&mut *f).collect())
                        .collect(),
                },
                Node::Series {
                    start,
                    stop,
                    step,
                    column,
                } => Node::Series {
                    start: f(start),
                    stop: f(stop),
                    step: f(step),
                    column,
                },
                Node::JsonbTable { func, arg, columns } => Node::JsonbTable {
                    func,
                    arg: f(arg),
                    columns,
                },
                Node::Filter { source, predicate } => Node::Filter {
                    source,
                    predicate: f(predicate),
                },
                Node::Projection {
                    source,
                    exprs,
                    columns,
                } => Node::Projection {
                    source,
                    exprs: exprs.into_iter().map(&mut *f).collect(),
                    columns,
                },
                Node::Limit {
                    source,
                    limit,
                    offset,
                    ties,
                } => Node::Limit {
                    source,
                    limit: limit.map(&mut *f),
                    offset: offset.map(&mut *f),
                    ties,
                },
                Node::Aggregate {
                    source,
                    group_by,
                    aggregates,
                    columns,
                } => Node::Aggregate {
                    source,
                    group_by: group_by.into_iter().map(&mut *f).collect(),
                    aggregates: aggregates
                        .into_iter()
                        .map(|a| map_aggregate(a, f))
                        .collect(),
                    columns,
                },
                Node::Lateral {
                    left,
                    right,
                    kind,
                    on,
                } => Node::Lateral {
                    left,
                    right: f(right),
                    kind,
                    on: on.map(&mut *f),
                },
                Node::Join {
                    left,
                    right,
                    kind,
                    on,
                    keys,
                } => Node::Join {
                    left,
                    right,
                    kind,
                    on: on.map(&mut *f),
                    keys,
                },
                Node::LookupJoin {
                    left,
                    right,
                    table,
                    lookup,
                    kind,
                    on,
                    keys,
                } => Node::LookupJoin {
                    left,
                    right,
                    table,
                    lookup,
                    kind,
                    on: on.map(&mut *f),
                    keys,
                },
                Node::Window {
                    source,
                    windows,
                    columns,
                } => Node::Window {
                    source,
                    windows: windows.into_iter().map(|w| w.map_exprs(f)).collect(),
                    columns,
                },
                Node::ProjectSet {
                    source,
                    functions,
                    ordinality,
                    columns,
                } => Node::ProjectSet {
                    source,
                    functions: functions.into_iter().map(|s| s.map_exprs(f)).collect(),
                    ordinality,
                    columns,
                },
                n @ (Node::Order { .. }
                | Node::Distinct { .. }
                | Node::DistinctOn { .. }
                | Node::SetOp { .. }
                | Node::RecursiveCte { .. }
                | Node::WorkTable { .. }) => n,
            })
        });
        match r {
            Ok(n) => n,
            Err(()) => unreachable!("the closure never fails"),
        }
    }

    /// Visits every top-level expression of the tree (not those inside subquery plans).
    pub fn walk_exprs(&self, f: &mut impl FnMut(&Expr)) {
        let mut each = |e: &Expr| e.walk(&mut *f);
        match self {
            Node::Get { key, .. } => key.iter().for_each(&mut each),
            Node::Scan { span, .. } | Node::IndexScan { span, .. } => span
                .start
                .values
                .iter()
                .chain(&span.end.values)
                .for_each(&mut each),
            Node::Values { rows, .. } => rows.iter().flatten().for_each(&mut each),
            Node::Series {
                start, stop, step, ..
            } => [start, stop, step].into_iter().for_each(&mut each),
            Node::JsonbTable { arg, .. } => each(arg),
            Node::Filter { source, predicate } => {
                each(predicate);
                source.walk_exprs(f);
            }
            Node::Projection { source, exprs, .. } => {
                exprs.iter().for_each(&mut each);
                source.walk_exprs(f);
            }
            Node::Join {
                left, right, on, ..
            }
            | Node::LookupJoin {
                left, right, on, ..
            } => {
                on.iter().for_each(&mut each);
                left.walk_exprs(f);
                right.walk_exprs(f);
            }
            Node::Lateral {
                left, right, on, ..
            } => {
                each(right);
                on.iter().for_each(&mut each);
                left.walk_exprs(f);
            }
            Node::Order { source, .. }
            | Node::Distinct { source }
            | Node::DistinctOn { source, .. } => source.walk_exprs(f),
            Node::SetOp { left, right, .. }
            | Node::RecursiveCte {
                anchor: left,
                recursive: right,
                ..
            } => {
                left.walk_exprs(f);
                right.walk_exprs(f);
            }
            Node::WorkTable { .. } => {}
            Node::Window {
                source, windows, ..
            } => {
                windows.iter().flat_map(Window::exprs).for_each(&mut each);
                source.walk_exprs(f);
            }
            Node::ProjectSet {
                source, functions, ..
            } => {
                functions
                    .iter()
                    .flat_map(SetFunction::args)
                    .for_each(&mut each);
                source.walk_exprs(f);
            }
            Node::Limit {
                source,
                limit,
                offset,
                ..
            } => {
                limit.iter().chain(offset).for_each(&mut each);
                source.walk_exprs(f);
            }
            Node::Aggregate {
                source,
                group_by,
                aggregates,
                ..
            } => {
                group_by.iter().for_each(&mut each);
                aggregates
                    .iter()
                    .flat_map(Aggregate::exprs)
                    .for_each(&mut each);
                source.walk_exprs(f);
            }
        }
    }

    /// The plan as one line (for subqueries inside expressions).
    pub fn explain_inline(&self) -> String {
        let mut out = String::new();
        self.explain(&mut out, 0);
        let lines: Vec<&str> = out
            .lines()
            .map(|l| l.trim_start_matches([' ', '└', '─']))
            .collect();
        lines.join(" <- ")
    }

    /// Writes the node and its inputs as an indented tree.
    fn explain(&self, out: &mut String, depth: usize) {
        let indent = if depth == 0 {
            String::new()
        } else {
            format!("{}└─ ", "   ".repeat(depth - 1))
        };
        let _ = write!(out, "{indent}");
        let source = match self {
            Node::Get { table, key } => {
                let key = format_key(table.id, PRIMARY_INDEX_ID, key, false);
                let _ = writeln!(out, "Get {} {key}", table.name);
                None
            }
            Node::Scan { table, span, .. } => {
                let span = format_span(table.id, PRIMARY_INDEX_ID, span);
                let _ = writeln!(out, "Scan {} {span}", table.name);
                None
            }
            Node::IndexScan {
                table,
                index,
                span,
                covering,
            } => {
                let kind = if *covering {
                    "IndexOnlyScan"
                } else {
                    "IndexScan"
                };
                let span = format_span(table.id, index.id, span);
                let _ = writeln!(out, "{kind} {}@{} {span}", table.name, index.name);
                None
            }
            Node::Values { rows, .. } => {
                let _ = writeln!(out, "Values rows={}", rows.len());
                None
            }
            Node::Series {
                start,
                stop,
                step,
                column,
            } => {
                let args: Vec<String> = [start, stop, step].iter().map(|e| e.format(&[])).collect();
                let _ = writeln!(
                    out,
                    "GenerateSeries {} ({})",
                    args.join(", "),
                    column.data_type
                );
                None
            }
            Node::JsonbTable { func, arg, .. } => {
                let _ = writeln!(out, "TableFunction {}({})", func.name(), arg.format(&[]));
                None
            }
            Node::Filter { source, predicate } => {
                let _ = writeln!(out, "Filter {}", predicate.format(&source.names()));
                Some(source)
            }
            Node::Projection {
                source,
                exprs,
                columns,
            } => {
                let names = source.names();
                let items: Vec<String> = exprs
                    .iter()
                    .zip(columns)
                    .map(|(e, c)| {
                        let s = e.format(&names);
                        if s == c.name {
                            s
                        } else {
                            format!("{s} AS {}", c.name)
                        }
                    })
                    .collect();
                let _ = writeln!(out, "Projection {}", items.join(", "));
                Some(source)
            }
            Node::Join {
                left,
                right,
                kind,
                on,
                keys,
            } => {
                let names = self.names();
                let width = left.columns().len();
                let mut s = match keys.is_empty() {
                    true => "NestedLoopJoin".to_string(),
                    false => "HashJoin".to_string(),
                };
                match kind {
                    JoinKind::Inner => {}
                    JoinKind::Left => s.push_str(" left"),
                    JoinKind::Right => s.push_str(" right"),
                    JoinKind::Full => s.push_str(" full"),
                }
                if !keys.is_empty() {
                    let k: Vec<String> = keys
                        .iter()
                        .map(|(l, r)| format!("{} = {}", names[*l], names[width + r]))
                        .collect();
                    let _ = write!(s, " on {}", k.join(", "));
                }
                if let Some(on) = on {
                    let _ = write!(s, " filter {}", on.format(&names));
                }
                let _ = writeln!(out, "{s}");
                left.explain(out, depth + 1);
                right.explain(out, depth + 1);
                None
            }
            Node::Lateral {
                left,
                right,
                kind,
                on,
            } => {
                let names = self.names();
                let mut s = "LateralJoin".to_string();
                if *kind == JoinKind::Left {
                    s.push_str(" left");
                }
                if let Some(on) = on {
                    let _ = write!(s, " filter {}", on.format(&names));
                }
                let _ = writeln!(out, "{s}");
                left.explain(out, depth + 1);
                if let Some(plan) = Node::lateral_plan(right) {
                    plan.explain(out, depth + 1);
                }
                None
            }
            Node::LookupJoin {
                left,
                right,
                table,
                lookup,
                kind,
                on,
                ..
            } => {
                let names = self.names();
                let mut s = format!("LookupJoin {}", table.name);
                if *kind == JoinKind::Left {
                    s.push_str(" left");
                }
                let width = left.columns().len();
                let key: Vec<String> = lookup
                    .iter()
                    .zip(&table.primary_key)
                    .map(|(&l, &c)| format!("{} = {}", names[width + c], names[l]))
                    .collect();
                let _ = write!(s, " on {}", key.join(", "));
                if let Some(on) = on {
                    let _ = write!(s, " filter {}", on.format(&names));
                }
                let _ = writeln!(out, "{s}");
                left.explain(out, depth + 1);
                right.explain(out, depth + 1);
                None
            }
            Node::Distinct { source } => {
                let _ = writeln!(out, "Distinct");
                Some(source)
            }
            Node::Window {
                source, windows, ..
            } => {
                let names = source.names();
                let items: Vec<String> = windows.iter().map(|w| w.format(&names)).collect();
                let _ = writeln!(out, "Window {}", items.join(", "));
                Some(source)
            }
            Node::ProjectSet {
                source,
                functions,
                ordinality,
                ..
            } => {
                let names = source.names();
                let items: Vec<String> = functions.iter().map(|s| s.format(&names)).collect();
                let with = if *ordinality { " WITH ORDINALITY" } else { "" };
                let _ = writeln!(out, "ProjectSet {}{with}", items.join(", "));
                Some(source)
            }
            Node::DistinctOn { source, columns } => {
                let names = source.names();
                let on: Vec<String> = columns
                    .iter()
                    .map(|c| names.get(*c).cloned().unwrap_or_else(|| format!("#{c}")))
                    .collect();
                let _ = writeln!(out, "DistinctOn {}", on.join(", "));
                Some(source)
            }
            Node::RecursiveCte {
                anchor,
                recursive,
                all,
            } => {
                let all = if *all { " all" } else { "" };
                let _ = writeln!(out, "RecursiveUnion{all}");
                anchor.explain(out, depth + 1);
                recursive.explain(out, depth + 1);
                None
            }
            Node::WorkTable { .. } => {
                let _ = writeln!(out, "WorkTable");
                None
            }
            Node::SetOp {
                op,
                all,
                left,
                right,
            } => {
                let all = if *all { " all" } else { "" };
                let _ = writeln!(out, "{}{all}", op.keyword());
                left.explain(out, depth + 1);
                right.explain(out, depth + 1);
                None
            }
            Node::Order { source, keys } => {
                let names = source.names();
                let items: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        let name = names
                            .get(k.column)
                            .cloned()
                            .unwrap_or_else(|| format!("#{}", k.column));
                        let dir = if k.descending { " DESC" } else { "" };
                        let nulls = if k.nulls_first != k.descending {
                            if k.nulls_first {
                                " NULLS FIRST"
                            } else {
                                " NULLS LAST"
                            }
                        } else {
                            ""
                        };
                        format!("{name}{dir}{nulls}")
                    })
                    .collect();
                let _ = writeln!(out, "Order {}", items.join(", "));
                Some(source)
            }
            Node::Limit {
                source,
                limit,
                offset,
                ties,
            } => {
                let mut s = "Limit".to_string();
                if let Some(l) = limit {
                    let _ = write!(s, " {}", l.format(&[]));
                }
                if let Some(o) = offset {
                    let _ = write!(s, " offset {}", o.format(&[]));
                }
                if !ties.is_empty() {
                    let names = source.names();
                    let t: Vec<String> = ties
                        .iter()
                        .map(|c| names.get(*c).cloned().unwrap_or_else(|| format!("#{c}")))
                        .collect();
                    let _ = write!(s, " with ties on {}", t.join(", "));
                }
                let _ = writeln!(out, "{s}");
                Some(source)
            }
            Node::Aggregate {
                source,
                group_by,
                aggregates,
                ..
            } => {
                let names = source.names();
                let mut items: Vec<String> = aggregates.iter().map(|a| a.format(&names)).collect();
                if !group_by.is_empty() {
                    let g: Vec<String> = group_by.iter().map(|e| e.format(&names)).collect();
                    items.push(format!("group by {}", g.join(", ")));
                }
                let _ = writeln!(out, "Aggregate {}", items.join(", "));
                Some(source)
            }
        };
        if let Some(source) = source {
            source.explain(out, depth + 1);
        }
    }
}

fn map_span(span: Span, f: &mut impl FnMut(Expr) -> Expr) -> Span {
    let mut bound = |b: SpanBound| SpanBound {
        values: b.values.into_iter().map(&mut *f).collect(),
        after: b.after,
    };
    Span {
        start: bound(span.start),
        end: bound(span.end),
    }
}

fn map_aggregate(a: Aggregate, f: &mut impl FnMut(Expr) -> Expr) -> Aggregate {
    match a {
        Aggregate::CountStar => Aggregate::CountStar,
        Aggregate::Count(e) => Aggregate::Count(f(e)),
        Aggregate::Sum(e, t) => Aggregate::Sum(f(e), t),
        Aggregate::Avg(e, t) => Aggregate::Avg(f(e), t),
        Aggregate::Min(e) => Aggregate::Min(f(e)),
        Aggregate::Max(e) => Aggregate::Max(f(e)),
        Aggregate::BoolAnd(e) => Aggregate::BoolAnd(f(e)),
        Aggregate::BoolOr(e) => Aggregate::BoolOr(f(e)),
        Aggregate::ArrayAgg(e) => Aggregate::ArrayAgg(f(e)),
        Aggregate::StringAgg(e, d) => {
            let e = f(e);
            Aggregate::StringAgg(e, f(d))
        }
        Aggregate::JsonbAgg(e) => Aggregate::JsonbAgg(f(e)),
        Aggregate::JsonbObjectAgg(k, v) => {
            let k = f(k);
            Aggregate::JsonbObjectAgg(k, f(v))
        }
        Aggregate::Stat(s, e, t) => Aggregate::Stat(s, f(e), t),
        Aggregate::Distinct(a) => Aggregate::Distinct(Box::new(map_aggregate(*a, f))),
        Aggregate::Filter(a, p) => {
            let a = map_aggregate(*a, f);
            Aggregate::Filter(Box::new(a), f(p))
        }
        Aggregate::Ordered(a, keys) => {
            let a = map_aggregate(*a, f);
            let keys = keys
                .into_iter()
                .map(|k| AggregateOrder {
                    expr: f(k.expr),
                    ..k
                })
                .collect();
            Aggregate::Ordered(Box::new(a), keys)
        }
    }
}

/// Formats an index key prefix like `/Table/104/1/1/'a'`; `after` marks the prefix end
/// (`/PrefixEnd`; the end of a whole index is the next index's prefix).
fn format_key(table: u32, index: u32, values: &[Expr], after: bool) -> String {
    if values.is_empty() && after {
        return format!("/Table/{table}/{}", index + 1);
    }
    let mut s = format!("/Table/{table}/{index}");
    for v in values {
        let _ = write!(s, "/{}", v.format(&[]));
    }
    if after {
        s.push_str("/PrefixEnd");
    }
    s
}

fn format_span(table: u32, index: u32, span: &Span) -> String {
    format!(
        "{} - {}",
        format_key(table, index, &span.start.values, span.start.after),
        format_key(table, index, &span.end.values, span.end.after)
    )
}

/// A statement plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// A query.
    Select(Node),
    /// A query that locks the rows it returns (FOR UPDATE / FOR SHARE): `node` emits the
    /// result columns followed by the primary-key columns of `table`'s row.
    LockingSelect { table: Arc<Table>, node: Node },
    /// Inserts the rows of `source`; `columns[i]` is the table column that source column `i`
    /// fills (the others get NULL). `on_conflict` says what to do with a row whose key an
    /// existing row holds (ON CONFLICT).
    Insert {
        table: Arc<Table>,
        columns: Vec<usize>,
        source: Node,
        on_conflict: Option<OnConflict>,
    },
    /// Updates the rows `source` emits (whole table rows): `set` gives new values by column.
    Update {
        table: Arc<Table>,
        source: Node,
        set: Vec<(usize, Expr)>,
    },
    /// Deletes the rows `source` emits (whole table rows).
    Delete { table: Arc<Table>, source: Node },
    /// Creates a table (its id is assigned at execution) and the sequences its SERIAL and
    /// identity columns own.
    CreateTable {
        table: Table,
        if_not_exists: bool,
        sequences: Vec<crate::catalog::Sequence>,
    },
    /// Drops tables.
    DropTable { names: Vec<String>, if_exists: bool },
    /// Creates a secondary index and fills it from the table's rows.
    CreateIndex(IndexSpec),
    /// Drops secondary indexes.
    DropIndex { names: Vec<String>, if_exists: bool },
    /// Creates (or replaces) a view.
    CreateView {
        view: crate::catalog::View,
        or_replace: bool,
    },
    /// Drops views.
    DropView { names: Vec<String>, if_exists: bool },
    /// Schema statements of [`SchemaPlan`].
    Schema(SchemaPlan),
    /// An INSERT, UPDATE or DELETE (`plan`, optimized when planned) with RETURNING: `exprs`
    /// over each new row (INSERT, UPDATE) or old row (DELETE), in table column order.
    Returning {
        plan: Box<Plan>,
        exprs: Vec<Expr>,
        columns: Vec<Column>,
    },
}

/// The ON CONFLICT clause of an INSERT.
#[derive(Clone, Debug, PartialEq)]
pub struct OnConflict {
    /// The unique constraints whose keys decide a conflict (PostgreSQL's arbiters): `None`
    /// for the primary key, `Some(id)` for the unique index with that id.
    pub arbiters: Vec<Option<u32>>,
    /// DO UPDATE, or DO NOTHING when `None`.
    pub update: Option<ConflictUpdate>,
}

/// The DO UPDATE action of ON CONFLICT: its expressions are bound over the existing row
/// followed by the proposed one (`excluded`), both in table column order.
#[derive(Clone, Debug, PartialEq)]
pub struct ConflictUpdate {
    /// New values by column.
    pub set: Vec<(usize, Expr)>,
    /// DO UPDATE ... WHERE: rows for which it is not true are left alone.
    pub filter: Option<Expr>,
}

impl OnConflict {
    fn map_exprs(self, f: &mut impl FnMut(Expr) -> Expr) -> OnConflict {
        OnConflict {
            arbiters: self.arbiters,
            update: self.update.map(|u| ConflictUpdate {
                set: u.set.into_iter().map(|(i, e)| (i, f(e))).collect(),
                filter: u.filter.map(&mut *f),
            }),
        }
    }

    /// The clause as EXPLAIN prints it, with the table's column names.
    fn explain(&self, table: &Table) -> String {
        let Some(update) = &self.update else {
            return "on conflict do nothing".into();
        };
        let mut names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
        names.extend(table.columns.iter().map(|c| format!("excluded.{}", c.name)));
        let items: Vec<String> = update
            .set
            .iter()
            .map(|(i, e)| format!("{} = {}", names[*i], e.format(&names)))
            .collect();
        let mut out = format!("on conflict do update set {}", items.join(", "));
        if let Some(filter) = &update.filter {
            let _ = write!(out, " where {}", filter.format(&names));
        }
        out
    }
}

/// A CREATE INDEX statement, resolved against its table when it runs.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexSpec {
    /// The table.
    pub table: String,
    /// The index name; None picks PostgreSQL's default (`<table>_<columns>_idx`).
    pub name: Option<String>,
    /// Column names with their direction (true: descending).
    pub columns: Vec<(String, bool)>,
    /// INCLUDE column names.
    pub include: Vec<String>,
    pub unique: bool,
    pub if_not_exists: bool,
}

impl Plan {
    /// Renders the plan as indented lines (EXPLAIN output).
    pub fn explain(&self) -> String {
        let mut out = String::new();
        match self {
            Plan::Select(node) => node.explain(&mut out, 0),
            Plan::LockingSelect { table, node } => {
                let _ = writeln!(out, "LockRows {}", table.name);
                node.explain(&mut out, 1);
            }
            Plan::Insert {
                table,
                source,
                on_conflict,
                ..
            } => {
                let _ = match on_conflict {
                    Some(c) => writeln!(out, "Insert {} {}", table.name, c.explain(table)),
                    None => writeln!(out, "Insert {}", table.name),
                };
                source.explain(&mut out, 1);
            }
            Plan::Update { table, source, set } => {
                let names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
                let items: Vec<String> = set
                    .iter()
                    .map(|(i, e)| format!("{} = {}", names[*i], e.format(&names)))
                    .collect();
                let _ = writeln!(out, "Update {} set {}", table.name, items.join(", "));
                source.explain(&mut out, 1);
            }
            Plan::Delete { table, source } => {
                let _ = writeln!(out, "Delete {}", table.name);
                source.explain(&mut out, 1);
            }
            Plan::CreateTable { table, .. } => {
                let _ = writeln!(out, "CreateTable {}", table.name);
            }
            Plan::DropTable { names, .. } => {
                let _ = writeln!(out, "DropTable {}", names.join(", "));
            }
            Plan::CreateIndex(spec) => {
                let _ = writeln!(out, "CreateIndex on {}", spec.table);
            }
            Plan::DropIndex { names, .. } => {
                let _ = writeln!(out, "DropIndex {}", names.join(", "));
            }
            Plan::CreateView { view, .. } => {
                let _ = writeln!(out, "CreateView {}", view.name);
            }
            Plan::DropView { names, .. } => {
                let _ = writeln!(out, "DropView {}", names.join(", "));
            }
            Plan::Schema(s) => {
                let _ = writeln!(out, "{}", s.explain());
            }
            Plan::Returning { plan, .. } => {
                let _ = writeln!(out, "Returning");
                for line in plan.explain().lines() {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
        out
    }

    /// The result columns (empty for statements without rows).
    pub fn columns(&self) -> Vec<Column> {
        match self {
            Plan::Select(node) => node.columns(),
            Plan::LockingSelect { table, node } => {
                let mut columns = node.columns();
                columns.truncate(columns.len() - table.primary_key.len());
                columns
            }
            Plan::Returning { columns, .. } => columns.clone(),
            _ => vec![],
        }
    }

    /// Transforms every expression of the plan (e.g. to substitute parameters).
    pub fn map_exprs(self, f: &mut impl FnMut(Expr) -> Expr) -> Plan {
        match self {
            Plan::Select(n) => Plan::Select(n.map_exprs(f)),
            Plan::LockingSelect { table, node } => Plan::LockingSelect {
                table,
                node: node.map_exprs(f),
            },
            Plan::Insert {
                table,
                columns,
                source,
                on_conflict,
            } => Plan::Insert {
                table,
                columns,
                source: source.map_exprs(f),
                on_conflict: on_conflict.map(|c| c.map_exprs(f)),
            },
            Plan::Update { table, source, set } => Plan::Update {
                table,
                source: source.map_exprs(f),
                set: set.into_iter().map(|(i, e)| (i, f(e))).collect(),
            },
            Plan::Delete { table, source } => Plan::Delete {
                table,
                source: source.map_exprs(f),
            },
            p @ (Plan::CreateTable { .. }
            | Plan::DropTable { .. }
            | Plan::CreateIndex(_)
            | Plan::DropIndex { .. }
            | Plan::CreateView { .. }
            | Plan::DropView { .. }
            | Plan::Schema(_)) => p.map_schema_exprs(f),
            Plan::Returning {
                plan,
                exprs,
                columns,
            } => Plan::Returning {
                plan: Box::new(plan.map_exprs(f)),
                exprs: exprs.into_iter().map(&mut *f).collect(),
                columns,
            },
        }
    }
}
