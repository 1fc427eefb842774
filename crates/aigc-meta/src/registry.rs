//! The one table of carriers: adding a format means adding its module and one line here.

use crate::carrier::Carrier;
use crate::carriers;
use aigc_core::Format;

/// Every carrier, in no particular order.
pub static CARRIERS: &[&dyn Carrier] = &[
    &carriers::png::PngCarrier,
    &carriers::mp3::Mp3Carrier,
    &carriers::flac::FlacCarrier,
    &carriers::ogg::OggCarrier,
    &carriers::jpeg::JpegCarrier,
    &carriers::webp::WebPCarrier,
    &carriers::gif::GifCarrier,
    &carriers::tiff::TiffCarrier,
    &carriers::isobmff::IsoBmffCarrier,
    &carriers::matroska::MatroskaCarrier,
    &carriers::markdown::MarkdownCarrier,
    &carriers::html::HtmlCarrier,
    &carriers::ooxml::OoxmlCarrier,
    &carriers::pdf::PdfCarrier,
    &carriers::wav::WavCarrier,
    &carriers::avi::AviCarrier,
    &carriers::flv::FlvCarrier,
];

/// The carrier that handles `format`, if any.
pub fn carrier_for(format: Format) -> Option<&'static dyn Carrier> {
    CARRIERS
        .iter()
        .copied()
        .find(|c| c.formats().contains(&format))
}

/// Formats that can carry a metadata label, with the placement used.
pub fn supported_formats() -> Vec<(Format, &'static str)> {
    Format::ALL
        .iter()
        .filter_map(|f| carrier_for(*f).map(|c| (*f, c.placement())))
        .collect()
}
