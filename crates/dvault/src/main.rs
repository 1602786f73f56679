//! The `dvault` command line.

fn main() {
    println!("dvault {}", env!("CARGO_PKG_VERSION"));
}
