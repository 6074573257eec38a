//! Director-side IPVS library (work in progress; see the crate README).
