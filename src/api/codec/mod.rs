//! Codecs for the CSR resource: which body format a request carries and which a response
//! takes ([`media`]), Kubernetes protobuf bodies ([`protobuf`], [`protobuf_stream`]) and PATCH
//! bodies ([`patch`]), query parameters and JSON bodies with a depth bound ([`request`]). Pure,
//! self-contained pieces: they decide nothing, the API calls them.
//!
//! # Where the API calls what
//! | request | call |
//! |---|---|
//! | every request with a body | [`media::BodyFormat::from_content_type`] (415 on `None`) |
//! | every response | [`media::ResponseFormat::negotiate`] (406 on `None`) |
//! | create / PUT / `/approval` / `/status` with a protobuf body | [`protobuf::decode_csr`] (400 on `Err`) |
//! | PATCH on the CSR, `/approval`, `/status` | [`patch::PatchKind::from_content_type`] (415), [`patch::apply`], then the PUT rules of that endpoint |
//! | protobuf-only responses | [`protobuf::encode_csr`], [`protobuf_stream::encode_csr_list`], [`protobuf_stream::encode_status`] |
//! | protobuf-only watch | [`protobuf_stream::encode_watch_frame`] per event |

pub mod media;
pub mod patch;
pub mod protobuf;
pub mod protobuf_stream;
pub mod request;
