//! rs-agent
