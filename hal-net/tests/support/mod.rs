pub mod cluster;
pub mod wire;
