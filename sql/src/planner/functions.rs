//! Binding of the string, pattern, math, formatting and date/time functions: for each name,
//! the parameter kinds it takes and its result type, as PostgreSQL resolves them. An integer argument of a math
//! function that has `double precision` and `numeric` forms takes the `double precision`
//! form (PostgreSQL's preferred numeric type), so `round(5)` and `sqrt(4)` are doubles;
//! `sqrt`, `exp`, `ln`, `log` and `power` are computed in double precision for numeric
//! arguments as well. Evaluation is in `exec::functions`.

use sqlparser::ast;

use super::Planner;
use super::expr::{Scope, char_as_text, is_flexible};
use crate::plan::{Expr, Function};
use crate::{DataType, Error, Result};

/// What a parameter accepts, and what its argument is converted to.
#[derive(Clone, Copy, PartialEq)]
enum P {
    /// A string type, passed as text.
    Text,
    /// An integer type, passed as it is.
    Int,
    /// Any number, converted to double precision.
    Float,
    /// An integer or numeric, converted to numeric.
    Numeric,
}

/// The function a name calls, if it is one of those bound here.
fn lookup(name: &str) -> Option<Function> {
    use Function as F;
    Some(match name {
        "substr" | "substring" => F::Substr,
        "strpos" => F::Strpos,
        "replace" => F::Replace,
        "concat" => F::Concat,
        "concat_ws" => F::ConcatWs,
        "btrim" => F::Btrim,
        "ltrim" => F::Ltrim,
        "rtrim" => F::RtrimChars,
        "split_part" => F::SplitPart,
        "lpad" => F::Lpad,
        "rpad" => F::Rpad,
        "left" => F::Left,
        "right" => F::Right,
        "repeat" => F::Repeat,
        "reverse" => F::Reverse,
        "initcap" => F::Initcap,
        "starts_with" => F::StartsWith,
        "chr" => F::Chr,
        "ascii" => F::Ascii,
        "char_length" | "character_length" => F::Length,
        "round" => F::Round,
        "trunc" => F::Trunc,
        "ceil" | "ceiling" => F::Ceil,
        "floor" => F::Floor,
        "sign" => F::Sign,
        "sqrt" => F::Sqrt,
        "power" | "pow" => F::Power,
        "exp" => F::Exp,
        "ln" => F::Ln,
        "log" | "log10" => F::Log10,
        "pi" => F::Pi,
        "mod" => F::Mod,
        "random" => F::Random,
        "greatest" => F::Greatest,
        "least" => F::Least,
        "gen_random_uuid" => F::GenRandomUuid,
        "format" => F::Format,
        "nextval" => F::Nextval,
        "currval" => F::Currval,
        "setval" => F::Setval,
        "lastval" => F::Lastval,
        "pg_sleep" => F::PgSleep,
        "pg_backend_pid" => F::PgBackendPid,
        "pg_cancel_backend" => F::PgCancelBackend,
        _ => return None,
    })
}

impl Planner<'_> {
    /// Binds a call of one of this module's functions; None when `name` is not one of them.
    pub(super) fn scalar_function(
        &mut self,
        name: &str,
        args: &[&ast::Expr],
        scope: &Scope,
        hint: Option<DataType>,
    ) -> Option<Result<(Expr, DataType)>> {
        if let ("pg_typeof", [arg]) = (name, args) {
            // The argument's type, known at bind time (PostgreSQL's regtype, shown as text).
            return Some(self.bind(arg, scope, None).map(|(_, t)| {
                (
                    Expr::Constant(crate::Value::Text(t.to_string())),
                    DataType::Text,
                )
            }));
        }
        if let Some(bound) = self.jsonb_function(name, args, scope) {
            return Some(bound);
        }
        if let Some(bound) = self.datetime_function(name, args, scope) {
            return Some(bound);
        }
        if let Some(bound) = self.array_function(name, args, scope) {
            return Some(bound);
        }
        let f = lookup(name)?;
        Some(self.bind_scalar(f, name, args, scope, hint))
    }

    /// Binds a call of a date/time function (`date_trunc`, `date_part`, `extract`, `age`,
    /// `make_*`); None when `name` is not one of them. An untyped argument where a date/time
    /// is expected is read as a timestamptz (PostgreSQL finds such a call ambiguous).
    fn datetime_function(
        &mut self,
        name: &str,
        args: &[&ast::Expr],
        scope: &Scope,
    ) -> Option<Result<(Expr, DataType)>> {
        use Function as F;
        use P::*;
        let f = match name {
            "date_trunc" => F::DateTrunc,
            "date_part" => F::DatePart,
            "extract" => F::Extract,
            "age" => F::Age,
            "make_date" => F::MakeDate,
            "make_timestamp" => F::MakeTimestamp,
            "make_interval" => F::MakeInterval,
            "to_char" => F::ToChar,
            "to_date" => F::ToDate,
            "to_timestamp" => F::ToTimestamp,
            // The select list's calls are planned as a ProjectSet (`planner::srf`).
            "generate_series" | "unnest" => {
                return Some(Err(Error::NotSupported(
                    "set-returning functions are supported only in the select list and FROM".into(),
                )));
            }
            _ => return None,
        };
        Some(match (f, args) {
            (F::ToChar, [v, pattern]) => self.bind_to_char(name, args, v, pattern, scope),
            (F::ToDate, [_, _]) => self.typed(f, name, args, &[Text, Text], scope, DataType::Date),
            (F::ToTimestamp, [_, _]) => {
                self.typed(f, name, args, &[Text, Text], scope, DataType::Timestamptz)
            }
            (F::ToTimestamp, [_]) => {
                self.typed(f, name, args, &[Float], scope, DataType::Timestamptz)
            }
            (F::DateTrunc | F::DatePart | F::Extract, [unit, v]) => {
                self.bind_datetime_part(f, name, args, unit, v, scope)
            }
            (F::Age, [a]) => self.bind_age(name, args, None, a, scope),
            (F::Age, [a, b]) => self.bind_age(name, args, Some(a), b, scope),
            (F::MakeDate, [_, _, _]) => {
                self.typed(f, name, args, &[Int, Int, Int], scope, DataType::Date)
            }
            (F::MakeTimestamp, [_, _, _, _, _, _]) => self.typed(
                f,
                name,
                args,
                &[Int, Int, Int, Int, Int, Float],
                scope,
                DataType::Timestamp,
            ),
            (F::MakeInterval, _) if args.len() <= 7 => {
                let all = [Int, Int, Int, Int, Int, Int, Float];
                self.fixed(f, name, args, &all[..args.len()], scope)
                    .map(|e| (with_interval_defaults(e, args.len()), DataType::Interval))
            }
            _ => Err(self.undefined(name, args, scope)),
        })
    }

    /// Binds `date_trunc(unit, v)`, `date_part(field, v)` or `extract(field FROM v)`.
    fn bind_datetime_part(
        &mut self,
        f: Function,
        name: &str,
        args: &[&ast::Expr],
        unit: &ast::Expr,
        v: &ast::Expr,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        use DataType as T;
        let (u, ut) = self.bind(unit, scope, Some(T::Text))?;
        if !ut.is_string() {
            return Err(self.undefined(name, args, scope));
        }
        let (e, t) = self.bind(v, scope, Some(T::Timestamptz))?;
        let u = char_as_text(u, ut);
        let cast = |e: Expr, to: DataType| super::expr::cast_expr(e, t, to);
        let (e, ty) = match (f, t) {
            (Function::DateTrunc, T::Timestamp | T::Timestamptz | T::Interval) => (e, t),
            (Function::DateTrunc, T::Date) => (cast(e, T::Timestamptz)?, T::Timestamptz),
            (Function::DatePart, T::Date) => (cast(e, T::Timestamp)?, T::Float8),
            (Function::DatePart, T::Timestamp | T::Timestamptz | T::Time | T::Interval) => {
                (e, T::Float8)
            }
            (
                Function::Extract,
                T::Date | T::Timestamp | T::Timestamptz | T::Time | T::Interval,
            ) => (e, T::Numeric(None)),
            _ => return Err(self.undefined(name, args, scope)),
        };
        Ok((Expr::Function(f, vec![u, e]), ty))
    }

    /// Binds `to_char(v, pattern)`: a date is formatted as a timestamptz, a time as an
    /// interval (PostgreSQL's implicit casts).
    fn bind_to_char(
        &mut self,
        name: &str,
        args: &[&ast::Expr],
        v: &ast::Expr,
        pattern: &ast::Expr,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        use DataType as T;
        let (p, pt) = self.bind(pattern, scope, Some(T::Text))?;
        let (e, t) = self.bind(v, scope, Some(T::Timestamptz))?;
        if !pt.is_string() {
            return Err(self.undefined(name, args, scope));
        }
        let e = match t {
            T::Timestamp | T::Timestamptz | T::Interval => e,
            T::Date => super::expr::cast_expr(e, t, T::Timestamptz)?,
            T::Time => super::expr::cast_expr(e, t, T::Interval)?,
            t if t.is_numeric() => e,
            _ => return Err(self.undefined(name, args, scope)),
        };
        Ok((
            Expr::Function(Function::ToChar, vec![e, char_as_text(p, pt)]),
            T::Text,
        ))
    }

    /// Binds `age(b)` (from midnight of the current date) or `age(a, b)`: timestamps, or
    /// timestamptz when either is one or both are dates.
    fn bind_age(
        &mut self,
        name: &str,
        args: &[&ast::Expr],
        a: Option<&ast::Expr>,
        b: &ast::Expr,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        use DataType as T;
        let ((eb, tb), a) = match a {
            Some(a) if is_flexible(b) && !is_flexible(a) => {
                let a = self.bind(a, scope, None)?;
                (self.bind(b, scope, Some(a.1))?, Some(a))
            }
            Some(a) => {
                let b = self.bind(b, scope, Some(T::Timestamptz))?;
                let a = self.bind(a, scope, Some(b.1))?;
                (b, Some(a))
            }
            None => (self.bind(b, scope, Some(T::Timestamptz))?, None),
        };
        let datetime = |t: T| matches!(t, T::Date | T::Timestamp | T::Timestamptz);
        let ta = a.as_ref().map_or(tb, |a| a.1);
        if !datetime(ta) || !datetime(tb) {
            return Err(self.undefined(name, args, scope));
        }
        let ty = if ta == T::Timestamp && matches!(tb, T::Timestamp | T::Date)
            || tb == T::Timestamp && ta == T::Date
        {
            T::Timestamp
        } else {
            T::Timestamptz
        };
        let ea = match a {
            Some((ea, ta)) => super::expr::cast_expr(ea, ta, ty)?,
            None => {
                let today = Expr::Cast(Box::new(Expr::Function(Function::Now, vec![])), T::Date);
                Expr::Cast(Box::new(today), ty)
            }
        };
        let eb = super::expr::cast_expr(eb, tb, ty)?;
        Ok((Expr::Function(Function::Age, vec![ea, eb]), T::Interval))
    }

    fn bind_scalar(
        &mut self,
        f: Function,
        name: &str,
        args: &[&ast::Expr],
        scope: &Scope,
        hint: Option<DataType>,
    ) -> Result<(Expr, DataType)> {
        use Function as F;
        use P::*;
        let text = DataType::Text;
        let float = DataType::Float8;
        match (f, args.len()) {
            (F::Concat, 1..) | (F::ConcatWs, 2..) => {
                let mut bound = Vec::with_capacity(args.len());
                for (i, a) in args.iter().enumerate() {
                    let (e, t) = self.bind(a, scope, Some(DataType::Text))?;
                    if f == F::ConcatWs && i == 0 && !t.is_string() {
                        return Err(self.undefined(name, args, scope));
                    }
                    bound.push(char_as_text(e, t));
                }
                Ok((Expr::Function(f, bound), text))
            }
            (F::Format, 1..) => {
                let mut bound = Vec::with_capacity(args.len());
                for (i, a) in args.iter().enumerate() {
                    let (e, t) = self.bind(a, scope, Some(DataType::Text))?;
                    if i == 0 && !t.is_string() {
                        return Err(self.undefined(name, args, scope));
                    }
                    bound.push(char_as_text(e, t));
                }
                Ok((Expr::Function(f, bound), text))
            }
            (F::Greatest | F::Least, 1..) => {
                let what = if f == F::Greatest {
                    "GREATEST"
                } else {
                    "LEAST"
                };
                let (bound, ty) = self.bind_common(args, scope, hint, what)?;
                Ok((Expr::Function(f, bound), ty))
            }
            (F::Pi | F::Random, 0) => Ok((Expr::Function(f, vec![]), float)),
            (F::GenRandomUuid, 0) => Ok((Expr::Function(f, vec![]), DataType::Uuid)),
            (F::Nextval | F::Currval, 1) => {
                self.typed(f, name, args, &[Text], scope, DataType::Int8)
            }
            (F::Lastval, 0) => Ok((Expr::Function(f, vec![]), DataType::Int8)),
            (F::PgSleep, 1) => self.typed(f, name, args, &[Float], scope, text),
            (F::PgBackendPid, 0) => Ok((Expr::Function(f, vec![]), DataType::Int4)),
            (F::PgCancelBackend, 1) => self.typed(f, name, args, &[Int], scope, DataType::Bool),
            (F::Setval, 2) => self.typed(f, name, args, &[Text, Int], scope, DataType::Int8),
            (F::Setval, 3) => {
                let Expr::Function(_, mut bound) =
                    self.fixed(f, name, &args[..2], &[Text, Int], scope)?
                else {
                    unreachable!("fixed binds a call");
                };
                let (called, t) = self.bind(args[2], scope, Some(DataType::Bool))?;
                if t != DataType::Bool {
                    return Err(self.undefined(name, args, scope));
                }
                bound.push(called);
                Ok((Expr::Function(f, bound), DataType::Int8))
            }
            (F::Substr, 2) => self.typed(f, name, args, &[Text, Int], scope, text),
            (F::Substr, 3) => self.typed(f, name, args, &[Text, Int, Int], scope, text),
            (F::Strpos, 2) => self.typed(f, name, args, &[Text, Text], scope, DataType::Int4),
            (F::Replace, 3) => self.typed(f, name, args, &[Text, Text, Text], scope, text),
            (F::Btrim | F::Ltrim, 1) => self.typed(f, name, args, &[Text], scope, text),
            (F::Btrim | F::Ltrim | F::RtrimChars, 2) => {
                self.typed(f, name, args, &[Text, Text], scope, text)
            }
            (F::SplitPart, 3) => self.typed(f, name, args, &[Text, Text, Int], scope, text),
            (F::Lpad | F::Rpad, 2) => self.typed(f, name, args, &[Text, Int], scope, text),
            (F::Lpad | F::Rpad, 3) => self.typed(f, name, args, &[Text, Int, Text], scope, text),
            (F::Left | F::Right | F::Repeat, 2) => {
                self.typed(f, name, args, &[Text, Int], scope, text)
            }
            (F::Reverse | F::Initcap, 1) => self.typed(f, name, args, &[Text], scope, text),
            (F::Length, 1) => self.typed(f, name, args, &[Text], scope, DataType::Int4),
            (F::StartsWith, 2) => self.typed(f, name, args, &[Text, Text], scope, DataType::Bool),
            (F::Chr, 1) => self.typed(f, name, args, &[Int], scope, text),
            (F::Ascii, 1) => self.typed(f, name, args, &[Text], scope, DataType::Int4),
            (F::Round | F::Trunc | F::Ceil | F::Floor | F::Sign, 1) => {
                let (_, t) = self.bind(args[0], scope, Some(float))?;
                if matches!(t, DataType::Numeric(_)) {
                    self.typed(f, name, args, &[Numeric], scope, DataType::Numeric(None))
                } else {
                    self.typed(f, name, args, &[Float], scope, float)
                }
            }
            (F::Round | F::Trunc, 2) => self.typed(
                f,
                name,
                args,
                &[Numeric, Int],
                scope,
                DataType::Numeric(None),
            ),
            (F::Sqrt | F::Exp | F::Ln | F::Log10, 1) => {
                self.typed(f, name, args, &[Float], scope, float)
            }
            (F::Power, 2) => self.typed(f, name, args, &[Float, Float], scope, float),
            (F::Mod, 2) => {
                let (_, ta) = self.bind(args[0], scope, Some(DataType::Int4))?;
                let (_, tb) = self.bind(args[1], scope, Some(DataType::Int4))?;
                if ta.is_integer() && tb.is_integer() {
                    let ty = DataType::common_type(ta, tb).unwrap_or(DataType::Int8);
                    self.typed(f, name, args, &[Int, Int], scope, ty)
                } else {
                    self.typed(
                        f,
                        name,
                        args,
                        &[Numeric, Numeric],
                        scope,
                        DataType::Numeric(None),
                    )
                }
            }
            _ => Err(self.undefined(name, args, scope)),
        }
    }

    /// Binds a pattern match (`LIKE`, `ILIKE`, `~`...): every argument is text; the result is
    /// boolean, negated for the `NOT` forms.
    pub(super) fn pattern(
        &mut self,
        f: Function,
        name: &str,
        args: &[&ast::Expr],
        negated: bool,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        let params = vec![P::Text; args.len()];
        let e = self.fixed(f, name, args, &params, scope)?;
        let e = if negated { Expr::Not(Box::new(e)) } else { e };
        Ok((e, DataType::Bool))
    }

    /// Binds `args` to the parameters `params` and calls `f`, of result type `ty`.
    fn typed(
        &mut self,
        f: Function,
        name: &str,
        args: &[&ast::Expr],
        params: &[P],
        scope: &Scope,
        ty: DataType,
    ) -> Result<(Expr, DataType)> {
        Ok((self.fixed(f, name, args, params, scope)?, ty))
    }

    fn fixed(
        &mut self,
        f: Function,
        name: &str,
        args: &[&ast::Expr],
        params: &[P],
        scope: &Scope,
    ) -> Result<Expr> {
        if args.len() != params.len() {
            return Err(self.undefined(name, args, scope));
        }
        let mut bound = Vec::with_capacity(args.len());
        for (a, p) in args.iter().zip(params) {
            let hint = match p {
                P::Text => DataType::Text,
                P::Int => DataType::Int4,
                P::Float => DataType::Float8,
                P::Numeric => DataType::Numeric(None),
            };
            let (e, t) = self.bind(a, scope, Some(hint))?;
            let e = match p {
                P::Text if t.is_string() => char_as_text(e, t),
                P::Int if t.is_integer() => e,
                P::Float if t.is_numeric() || matches!(t, DataType::Numeric(_)) => {
                    super::expr::cast_expr(e, t, DataType::Float8)?
                }
                P::Numeric if t.is_integer() || matches!(t, DataType::Numeric(_)) => {
                    super::expr::cast_expr(e, t, DataType::Numeric(None))?
                }
                _ if is_flexible(a) => super::expr::cast_expr(e, t, hint)?,
                _ => return Err(self.undefined(name, args, scope)),
            };
            bound.push(e);
        }
        Ok(Expr::Function(f, bound))
    }

    /// Binds `make_interval` with named arguments (`days => 10`), in any order.
    pub(super) fn make_interval_named(
        &mut self,
        args: &[ast::FunctionArg],
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        const NAMES: [&str; 7] = ["years", "months", "weeks", "days", "hours", "mins", "secs"];
        let mut given: [Option<&ast::Expr>; 7] = [None; 7];
        let mut positional = true;
        for (i, a) in args.iter().enumerate() {
            let named = match a {
                ast::FunctionArg::Named {
                    name,
                    arg: ast::FunctionArgExpr::Expr(e),
                    ..
                } => Some((name, e)),
                ast::FunctionArg::ExprNamed {
                    name: ast::Expr::Identifier(name),
                    arg: ast::FunctionArgExpr::Expr(e),
                    ..
                } => Some((name, e)),
                _ => None,
            };
            let (at, e) = match (a, named) {
                (ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)), _) if positional => {
                    (i, e)
                }
                (_, Some((name, e))) => {
                    positional = false;
                    let n = name.value.to_lowercase();
                    let at = NAMES.iter().position(|x| *x == n).ok_or_else(|| {
                        Error::UndefinedFunction(format!(
                            "function make_interval({n} => ...) does not exist"
                        ))
                    })?;
                    (at, e)
                }
                _ => {
                    return Err(Error::Syntax(
                        "positional argument cannot follow named argument".into(),
                    ));
                }
            };
            match given.get_mut(at) {
                Some(slot @ None) => *slot = Some(e),
                _ => {
                    return Err(Error::Syntax(format!(
                        "argument name \"{}\" used more than once",
                        NAMES.get(at).unwrap_or(&"?")
                    )));
                }
            }
        }
        let mut bound = Vec::with_capacity(7);
        for (i, g) in given.iter().enumerate() {
            let p = if i == 6 { P::Float } else { P::Int };
            bound.push(match g {
                Some(e) => {
                    match self.fixed(Function::MakeInterval, "make_interval", &[e], &[p], scope)? {
                        Expr::Function(_, mut one) => {
                            one.pop().unwrap_or(Expr::Constant(crate::Value::Null))
                        }
                        other => other,
                    }
                }
                None if i == 6 => Expr::Constant(crate::Value::Float(0.0)),
                None => Expr::Constant(crate::Value::Int(0)),
            });
        }
        Ok((
            Expr::Function(Function::MakeInterval, bound),
            DataType::Interval,
        ))
    }

    /// The 42883 error of a call no form of `name` takes.
    pub(super) fn undefined(&mut self, name: &str, args: &[&ast::Expr], scope: &Scope) -> Error {
        let mut types = Vec::with_capacity(args.len());
        for a in args {
            match self.bind(a, scope, None) {
                Ok((_, t)) => types.push(t.to_string()),
                Err(e) => return e,
            }
        }
        Error::UndefinedFunction(format!(
            "function {name}({}) does not exist",
            types.join(", ")
        ))
    }
}

/// A `make_interval` call with the arguments after the first `given` as their defaults (0).
fn with_interval_defaults(e: Expr, given: usize) -> Expr {
    match e {
        Expr::Function(f, mut args) => {
            for i in given..7 {
                args.push(Expr::Constant(if i == 6 {
                    crate::Value::Float(0.0)
                } else {
                    crate::Value::Int(0)
                }));
            }
            Expr::Function(f, args)
        }
        e => e,
    }
}
