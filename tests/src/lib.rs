//! e2e test support (placeholder)
