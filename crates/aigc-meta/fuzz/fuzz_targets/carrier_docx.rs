#![no_main]
//! Fuzzes the Docx carrier: read, write, read back.
#[path = "../common.rs"]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::exercise(aigc_core::Format::Docx, data));
