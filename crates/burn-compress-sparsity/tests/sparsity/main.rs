//! Tests of burn-compress-sparsity: levels reached, N:M patterns held, schedules driven from a
//! training loop, RB and SR-STE loss terms against their formulas, and bad input named.

mod errors;
mod methods;
mod model;
