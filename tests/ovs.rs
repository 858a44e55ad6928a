//! OVS-DPDK fixture (placeholder: being written).
