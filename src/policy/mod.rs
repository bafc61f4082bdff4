//! Approval policy: small named validators run in fixed phases, and the auto-approval rules.
