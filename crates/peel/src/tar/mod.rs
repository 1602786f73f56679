//! The tar layer: header blocks kept byte for byte, data as entries, padding and the end kept
//! exactly.

use serde::{Deserialize, Serialize};

/// Everything about a tar archive except its members' data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TarRecipe {}
