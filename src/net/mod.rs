//! Networking (API.md §6): the layer on top of the loop that transports, ports and datagrams build on.
//! One file per concern; so far addresses and name resolution.

pub mod address;
pub mod resolve;
