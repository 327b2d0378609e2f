//! What Herald is compared with: the limits (`raw`) and the designs a Rust team would
//! otherwise pick (`naive`, `apalis`), each held to the same durability (fsync per
//! acknowledged event).

pub(crate) mod apalis;
pub(crate) mod naive;
pub(crate) mod raw;
