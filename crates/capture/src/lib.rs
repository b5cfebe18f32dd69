//! capture (placeholder)
