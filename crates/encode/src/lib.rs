//! encode (placeholder)
