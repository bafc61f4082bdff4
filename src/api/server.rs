//! HTTPS server (filled in next).
