//! Raw DPDK bindings (generated at build time from the system's headers).
//! Everything here is `unsafe`; `pmd::dpdk` is the safe layer on top.

#[allow(
    unsafe_op_in_unsafe_fn,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    improper_ctypes,
    clippy::all
)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}
pub use bindings::*;

extern "C" {
    /// `rte_errno` of the calling thread (a TLS macro in C).
    pub fn ferrovs_rte_errno() -> i32;
    /// `rte_pktmbuf_mtod(m, void *)`: the first byte of packet data.
    pub fn ferrovs_pktmbuf_mtod(m: *mut rte_mbuf) -> *mut std::ffi::c_void;
}
