//! The repository (to be written).
