//! The forum simulator.

fn main() {}
