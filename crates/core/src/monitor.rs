//! monitor (to be written).
