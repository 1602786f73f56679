//! postgres (to be written).
