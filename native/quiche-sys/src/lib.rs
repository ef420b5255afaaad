//! Re-exports quiche so that its `#[no_mangle]` C API (the `ffi` feature) is
//! archived into this static library, which node-gyp links into the addon.
pub use quiche;
