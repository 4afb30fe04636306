//! Planning RETURNING lists of INSERT, UPDATE and DELETE.

use sqlparser::ast;

use super::Planner;
use super::expr::Scope;
use crate::Result;
use crate::plan::Plan;

impl Planner<'_> {
    /// Wraps a write plan with its RETURNING list, bound over the table's rows (`scope`). The
    /// write plan is optimized here, as the optimizer leaves a RETURNING plan alone.
    pub(super) fn plan_returning(
        &mut self,
        plan: Plan,
        scope: &Scope,
        items: Option<&Vec<ast::SelectItem>>,
    ) -> Result<Plan> {
        let Some(items) = items else {
            return Ok(plan);
        };
        let (exprs, columns) = self.bind_select_list(items, scope)?;
        let plan = crate::optimizer::optimize(plan, self.param_hints());
        Ok(Plan::Returning {
            plan: Box::new(plan),
            exprs,
            columns,
        })
    }
}
