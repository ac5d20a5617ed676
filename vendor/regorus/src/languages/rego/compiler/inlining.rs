// Inlining of one-line helper functions (scanledger patch).
//
// A call of a user function costs the VM a register window, a call frame and a memo
// lookup: ~200 ns, against ~20 ns for an instruction. Policy libraries are full of
// one-line helpers (`prop(r, path, d) := object.get(r, ...)`, `premium(r) if
// r.facts.premium`) called dozens of times per resource. When the compiler is asked to
// (`Compiler::compile_from_policy_inlining`), a call of such a helper is compiled as the
// helper's expression, with its parameters bound to the argument registers.
//
// Only helpers whose value is exactly the value of one expression are inlined, and the
// expression must be one whose value is undefined when a parameter is undefined (so an
// undefined argument still makes the call undefined, as the VM's call does):
// - `f(a, b) := EXPR` (one definition, no body);
// - `f(a, b) if STMT` (one definition, one body of one statement, no `with`), where STMT
//   is `EXPR`, `not EXPR` or `_ = EXPR`: the call is true when the statement holds and
//   undefined otherwise (`Instruction::TrueIf`).
// - `f(a, b) := EXPR if STMT else := OTHER` (one body of one statement, one `else`
//   without a body): compiled with forward jumps (`Instruction::JumpUnless`), each
//   argument checked to be defined first (`compile_inlined_else`).
// EXPR (and OTHER) is built from literals, the parameters (each used at least once,
// except in the `else` form, whose arguments are all checked), references into them, array/set/object literals, comparisons, builtin calls and calls
// of helpers that are themselves inlined. Anything else (other variables, `input`,
// `data`, rules, comprehensions, membership, arithmetic, chains of `else`, defaults,
// several definitions) keeps the call.
//
// Errors: a builtin error inside an inlined expression is raised in the caller's body.
// With strict rule errors (what the scanner runs) it ends the evaluation either way; a
// VM that absorbs rule errors would absorb it one level up, so inlining is opt-in.
#![allow(clippy::pattern_type_mismatch, clippy::unused_trait_names)]

use super::expressions::collection_literals::try_eval_const;
use super::{Compiler, CompilerError, Register, Result};
use crate::ast::{AssignOp, Expr, ExprRef, Literal, Rule, RuleHead};
use crate::lexer::Span;
use crate::rvm::instructions::{ArrayCreateParams, GuardMode};
use crate::rvm::Instruction;
use crate::utils::get_path_string;
use crate::Value;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// How deep inlined helpers may call inlined helpers.
const MAX_DEPTH: usize = 4;

/// Builtins folded over constant arguments inside inlined helpers: pure, deterministic,
/// and their value does not depend on the evaluation (no time, no randomness, no input).
const FOLDED: &[&str] = &["array.concat"];

#[derive(Debug)]
pub(super) struct InlinePlan {
    params: Vec<String>,
    expr: ExprRef,
    /// `None`: the call's value is the expression's. Otherwise the call is true when the
    /// expression passes this guard, undefined when not.
    mode: Option<GuardMode>,
    /// `f(a) := EXPR if { COND } else := OTHER`: the call's value is EXPR's (even
    /// undefined) when COND's value passes the guard, OTHER's when not.
    otherwise: Option<Otherwise>,
    package: String,
    module_index: u32,
}

#[derive(Debug)]
struct Otherwise {
    cond: ExprRef,
    mode: GuardMode,
    value: ExprRef,
}

impl InlinePlan {
    pub(super) fn arity(&self) -> usize {
        self.params.len()
    }
}

impl<'a> Compiler<'a> {
    /// The inline plan of the user function at `path` (a full rule path), if its calls
    /// can be inlined. Memoized; a helper being examined counts as not inlinable, so a
    /// cycle ends.
    pub(super) fn inline_plan(&mut self, path: &str) -> Option<Rc<InlinePlan>> {
        if !self.inline_functions {
            return None;
        }
        if let Some(known) = self.inline_plans.get(path) {
            return known.clone();
        }
        if self.inline_depth >= MAX_DEPTH {
            return None;
        }
        self.inline_plans.insert(path.to_string(), None);
        self.inline_depth += 1;
        let plan = self.examine(path).map(Rc::new);
        self.inline_depth -= 1;
        self.inline_plans.insert(path.to_string(), plan.clone());
        plan
    }

    fn examine(&mut self, path: &str) -> Option<InlinePlan> {
        if self.policy.inner.default_rules.contains_key(path) {
            return None;
        }
        let rules = self.policy.get_rules();
        let [rule] = rules.get(path)?.as_slice() else {
            return None;
        };
        let Rule::Spec {
            head: RuleHead::Func { args, assign, .. },
            bodies,
            ..
        } = rule.as_ref()
        else {
            return None;
        };
        let mut params: Vec<String> = Vec::new();
        for arg in args {
            match arg.as_ref() {
                Expr::Var {
                    value: Value::String(name),
                    ..
                } if &**name != "_" && !params.iter().any(|p| p == &**name) => {
                    params.push(name.to_string());
                }
                _ => return None,
            }
        }
        if params.is_empty() {
            return None;
        }
        let mut otherwise = None;
        let (expr, mode) = match (bodies.as_slice(), assign) {
            ([], Some(assign)) => (assign.value.clone(), None),
            ([body, other], Some(assign))
                if !body.is_else
                    && other.is_else
                    && other.query.stmts.is_empty()
                    && other.assign.is_some() =>
            {
                let value = body.assign.as_ref().unwrap_or(assign).value.clone();
                let [stmt] = body.query.stmts.as_slice() else {
                    return None;
                };
                let (cond, mode) = Self::statement(stmt)?;
                otherwise = Some(Otherwise {
                    cond,
                    mode,
                    value: other.assign.as_ref()?.value.clone(),
                });
                (value, None)
            }
            ([body], head) if !body.is_else && body.assign.is_none() => {
                let yields_true = match head {
                    None => true,
                    Some(a) => matches!(
                        a.value.as_ref(),
                        Expr::Bool {
                            value: Value::Bool(true),
                            ..
                        }
                    ),
                };
                let [stmt] = body.query.stmts.as_slice() else {
                    return None;
                };
                if !yields_true {
                    return None;
                }
                let (expr, mode) = Self::statement(stmt)?;
                (expr, Some(mode))
            }
            _ => return None,
        };
        let rule_ref = rule.clone();
        let module_index = self.find_module_index_for_rule(&rule_ref).ok()?;
        let package = self
            .find_module_package_and_index_for_rule(path, rules)
            .ok()?
            .0;

        // Calls inside the expression resolve as they would in the helper's package.
        let saved = core::mem::replace(&mut self.current_package, package.clone());
        let mut used = alloc::vec![false; params.len()];
        let mut pure = self.inlinable_expr(&expr, &params, &mut used);
        if let Some(o) = &otherwise {
            // Every argument's definedness is checked apart (`compile_inlined_call`).
            pure = pure
                && self.inlinable_expr(&o.cond, &params, &mut used)
                && self.inlinable_expr(&o.value, &params, &mut used);
            used.fill(true);
        }
        self.current_package = saved;
        (pure && used.iter().all(|u| *u)).then_some(InlinePlan {
            params,
            expr,
            mode,
            otherwise,
            package,
            module_index,
        })
    }

    /// The expression of a body statement `EXPR`, `not EXPR` or `_ = EXPR` (no `with`),
    /// and the guard that says whether the statement holds.
    fn statement(stmt: &crate::ast::LiteralStmt) -> Option<(ExprRef, GuardMode)> {
        if !stmt.with_mods.is_empty() {
            return None;
        }
        match &stmt.literal {
            Literal::Expr { expr, .. } => match expr.as_ref() {
                Expr::AssignExpr {
                    op: AssignOp::Eq | AssignOp::ColEq,
                    lhs,
                    rhs,
                    ..
                } if matches!(lhs.as_ref(), Expr::Var { value: Value::String(v), .. } if &**v == "_") => {
                    Some((rhs.clone(), GuardMode::NotUndefined))
                }
                _ => Some((expr.clone(), GuardMode::Condition)),
            },
            Literal::NotExpr { expr, .. } => Some((expr.clone(), GuardMode::Not)),
            _ => None,
        }
    }

    /// `expr` only combines the parameters with constructs that yield undefined when an
    /// operand is undefined; `used` records which parameters appear.
    fn inlinable_expr(&mut self, expr: &ExprRef, params: &[String], used: &mut [bool]) -> bool {
        match expr.as_ref() {
            Expr::String { .. }
            | Expr::RawString { .. }
            | Expr::Number { .. }
            | Expr::Bool { .. }
            | Expr::Null { .. } => true,
            Expr::Var {
                value: Value::String(name),
                ..
            } => match params.iter().position(|p| p == &**name) {
                Some(i) => {
                    used[i] = true;
                    true
                }
                None => false,
            },
            Expr::Var { .. } => false,
            Expr::RefDot { refr, .. } => self.inlinable_expr(refr, params, used),
            Expr::RefBrack { refr, index, .. } => {
                self.inlinable_expr(refr, params, used) && self.inlinable_expr(index, params, used)
            }
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                items.iter().all(|i| self.inlinable_expr(i, params, used))
            }
            Expr::Object { fields, .. } => fields.iter().all(|(_, k, v)| {
                self.inlinable_expr(k, params, used) && self.inlinable_expr(v, params, used)
            }),
            Expr::BoolExpr { lhs, rhs, .. } => {
                self.inlinable_expr(lhs, params, used) && self.inlinable_expr(rhs, params, used)
            }
            Expr::Call {
                fcn, params: args, ..
            } => {
                let Ok(path) = get_path_string(fcn, None) else {
                    return false;
                };
                let callee_ok = match self.user_function_path(fcn, &path) {
                    Some(full) => self
                        .inline_plan(&full)
                        .is_some_and(|plan| plan.params.len() == args.len()),
                    None => {
                        path != "print"
                            && !self.host_await_builtins.contains_key(&path)
                            && self.is_builtin(&path)
                            && self.lookup_builtin_arity(&path) == Some(args.len())
                    }
                };
                callee_ok && args.iter().all(|a| self.inlinable_expr(a, params, used))
            }
            _ => false,
        }
    }

    /// The full path of the user function a call of `path` in the current package names,
    /// resolved as `compile_function_call` does; `None` for anything else.
    fn user_function_path(&self, fcn: &ExprRef, path: &str) -> Option<String> {
        let full = if self.policy.inner.rules.contains_key(path) {
            path.to_string()
        } else if let Some(resolved) = self.resolve_fcn_path_through_imports(path) {
            resolved
        } else {
            get_path_string(fcn, Some(&self.current_package)).ok()?
        };
        self.is_user_defined_function(&full).then_some(full)
    }

    /// The value of `expr` if it is known when compiling: a literal, a collection of
    /// them, or (inside an inlined helper) a parameter whose argument is one.
    fn const_value(&self, expr: &ExprRef) -> Option<Value> {
        match expr.as_ref() {
            Expr::Var {
                value: Value::String(name),
                ..
            } => self.inline_consts.last()?.get(name.as_ref()).cloned(),
            Expr::Array { items, .. } => items
                .iter()
                .map(|i| self.const_value(i))
                .collect::<Option<Vec<_>>>()
                .map(Value::from_array),
            other => try_eval_const(other),
        }
    }

    /// A call of a pure builtin in [`FOLDED`] whose arguments are all constants, computed
    /// now (a literal load at run time instead of a call and its allocations). `prop(r,
    /// ["a", "b"], d) := object.get(r, array.concat(["properties"], path), d)` then
    /// reads a constant path. `None` (compile the call) for anything else, and when the
    /// builtin fails on these arguments: the error is then raised where it always was.
    pub(super) fn fold_builtin_call(
        &mut self,
        name: &str,
        params: &[ExprRef],
        span: &Span,
    ) -> Result<Option<Register>> {
        if !FOLDED.contains(&name) || self.inline_consts.is_empty() {
            return Ok(None);
        }
        let Some(args) = params
            .iter()
            .map(|p| self.const_value(p))
            .collect::<Option<Vec<_>>>()
        else {
            return Ok(None);
        };
        let Some((builtin, _)) = crate::builtins::BUILTINS.get(name) else {
            return Ok(None);
        };
        let Ok(value) = builtin(span, params, &args, true) else {
            return Ok(None);
        };
        let dest = self.alloc_register()?;
        let literal_idx = self.add_literal(value);
        self.emit_instruction(Instruction::Load { dest, literal_idx }, span);
        Ok(Some(dest))
    }

    /// A call of an inlined helper: its arguments, then its expression with the
    /// parameters bound to them, compiled in the helper's package.
    pub(super) fn compile_inlined_call(
        &mut self,
        plan: &InlinePlan,
        args: &[ExprRef],
        span: &Span,
    ) -> Result<Register> {
        let mut arg_regs = Vec::with_capacity(args.len());
        for arg in args {
            arg_regs.push(self.compile_rego_expr_with_span(arg, arg.span(), false)?);
        }
        // Read in the caller's frame: an argument may be the caller's own constant parameter.
        let consts = plan
            .params
            .iter()
            .zip(args)
            .filter_map(|(name, arg)| Some((name.clone(), self.const_value(arg)?)))
            .collect();
        let saved_package = core::mem::replace(&mut self.current_package, plan.package.clone());
        let saved_module = core::mem::replace(&mut self.current_module_index, plan.module_index);
        self.push_scope();
        self.inline_consts.push(consts);
        for (name, &reg) in plan.params.iter().zip(&arg_regs) {
            self.add_variable(name, reg);
        }
        let value = match &plan.otherwise {
            None => self.compile_rego_expr_with_span(&plan.expr, plan.expr.span(), false),
            Some(otherwise) => self.compile_inlined_else(plan, otherwise, &arg_regs, span),
        };
        self.inline_consts.pop();
        self.pop_scope();
        self.current_package = saved_package;
        self.current_module_index = saved_module;
        let value = value?;
        let Some(mode) = plan.mode else {
            return Ok(value);
        };
        // `not EXPR` holds when EXPR is undefined, so an undefined argument is checked
        // apart; the other statements fail on it by themselves.
        let defined = match (mode, arg_regs.as_slice()) {
            (GuardMode::Not, [one]) => *one,
            (GuardMode::Not, _) => {
                let dest = self.alloc_register()?;
                let params_index =
                    self.program
                        .instruction_data
                        .add_array_create_params(ArrayCreateParams {
                            dest,
                            elements: arg_regs.clone(),
                        });
                self.emit_instruction(Instruction::ArrayCreate { params_index }, span);
                dest
            }
            _ => value,
        };
        let dest = self.alloc_register()?;
        self.emit_instruction(
            Instruction::TrueIf {
                dest,
                src: value,
                defined,
                mode,
            },
            span,
        );
        Ok(dest)
    }

    /// `f(a) := EXPR if { COND } else := OTHER`, as the VM runs a call of it:
    ///
    /// ```text
    ///     JumpUnless a_i defined → undefined     (for each argument)
    ///     c = COND;  JumpUnless c passes → else
    ///     dest = EXPR;  Jump → end               (undefined stays undefined)
    /// else:
    ///     dest = OTHER;  Jump → end
    /// undefined:
    ///     dest = undefined
    /// end:
    /// ```
    ///
    /// The expressions read only the arguments, literals, builtins and other inlined
    /// helpers, never `input` or `data`, so no register the compiler loads once per body is first loaded on a
    /// branch that may be skipped.
    fn compile_inlined_else(
        &mut self,
        plan: &InlinePlan,
        otherwise: &Otherwise,
        arg_regs: &[Register],
        span: &Span,
    ) -> Result<Register> {
        let dest = self.alloc_register()?;
        let mut to_undefined = Vec::new();
        for &arg in arg_regs {
            to_undefined.push(self.emit_jump_unless(arg, GuardMode::NotUndefined, span));
        }
        let cond =
            self.compile_rego_expr_with_span(&otherwise.cond, otherwise.cond.span(), false)?;
        let to_else = alloc::vec![self.emit_jump_unless(cond, otherwise.mode, span)];
        // An undefined EXPR makes the call undefined: the `else` is not taken.
        let value = self.compile_rego_expr_with_span(&plan.expr, plan.expr.span(), false)?;
        self.emit_instruction(Instruction::Move { dest, src: value }, span);
        let mut to_end = alloc::vec![self.emit_jump(span)];
        let else_pc = self.program.instructions.len();
        let other =
            self.compile_rego_expr_with_span(&otherwise.value, otherwise.value.span(), false)?;
        self.emit_instruction(Instruction::Move { dest, src: other }, span);
        to_end.push(self.emit_jump(span));
        let undefined_pc = self.program.instructions.len();
        let literal_idx = self.add_literal(Value::Undefined);
        self.emit_instruction(Instruction::Load { dest, literal_idx }, span);
        let end_pc = self.program.instructions.len();
        for (sites, target) in [
            (to_undefined, undefined_pc),
            (to_else, else_pc),
            (to_end, end_pc),
        ] {
            let target = u16::try_from(target).map_err(|_| CompilerError::General {
                message: "inlined else: branch target exceeds the RVM instruction limit"
                    .to_string(),
            })?;
            for site in sites {
                match self.program.instructions.get_mut(site) {
                    Some(
                        Instruction::JumpUnless { target: t, .. } | Instruction::Jump { target: t },
                    ) => *t = target,
                    _ => {
                        return Err(CompilerError::General {
                            message: "inlined else: branch instruction is missing".to_string(),
                        }
                        .into())
                    }
                }
            }
        }
        Ok(dest)
    }

    fn emit_jump_unless(&mut self, src: Register, mode: GuardMode, span: &Span) -> usize {
        let site = self.program.instructions.len();
        self.emit_instruction(
            Instruction::JumpUnless {
                src,
                mode,
                target: 0,
            },
            span,
        );
        site
    }

    fn emit_jump(&mut self, span: &Span) -> usize {
        let site = self.program.instructions.len();
        self.emit_instruction(Instruction::Jump { target: 0 }, span);
        site
    }
}
