pub mod browser;
pub mod cluster;
pub mod wire;
