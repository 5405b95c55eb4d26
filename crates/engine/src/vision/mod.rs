//! Gemma 3 vision: the SigLIP encoder and projector of an mmproj GGUF (`mmproj`, `siglip`,
//! `projector`), and how an image sits in a prompt.
//!
//! The encoder's input contract (what preprocessing produces): f32 pixels, channels first,
//! `3 x 896 x 896`, each value `(u8 / 255 - 0.5) / 0.5` of the image as PIL's
//! `convert("RGB").resize((896, 896), BILINEAR)` makes it (transformers' `Gemma3ImageProcessor`).
//! Its output: one embedding per image soft token, `[256, text hidden]`, which replaces those
//! tokens' text embeddings (unscaled) in `Model::forward_with_images`.

mod mmproj;
pub mod preprocess;
mod projector;
mod siglip;

pub use mmproj::{VisionConfig, VisionEncoder, VisionMemory};
pub use siglip::activation_peak_bytes;

/// The token each image embedding stands in for.
pub const IMAGE_SOFT_TOKEN: &str = "<image_soft_token>";
pub const START_OF_IMAGE: &str = "<start_of_image>";
pub const END_OF_IMAGE: &str = "<end_of_image>";

/// What one image becomes in a user turn's text, as Gemma 3's processor writes it:
/// `"\n\n<start_of_image>"`, `tokens` soft tokens, `"<end_of_image>\n\n"`. The markers are control
/// tokens, so this is template text (`PromptPart::Control`), never user text.
pub fn image_prompt_text(tokens: usize) -> String {
    format!("\n\n{START_OF_IMAGE}{}{END_OF_IMAGE}\n\n", IMAGE_SOFT_TOKEN.repeat(tokens))
}

/// What one image with `crops` Pan & Scan crops becomes, as Gemma 3's processor rewrites its
/// `<start_of_image>` when the image was cropped: the whole image introduced as the original,
/// then the crops, each an [`image_prompt_text`], joined by a space. With no crops it is the
/// plain [`image_prompt_text`], so an uncropped image is laid out exactly as without Pan & Scan.
pub fn image_group_prompt_text(crops: usize, tokens: usize) -> String {
    let one = image_prompt_text(tokens);
    if crops == 0 {
        return one;
    }
    let crops_text = vec![one.as_str(); crops].join(" ");
    format!("Here is the original image {one} and here are some crops to help you see better {crops_text}")
}

/// An encoded image for a prompt: its embeddings (`VisionEncoder::encode`) and a key naming its
/// content (e.g. the sha256 of the image), by which a session tells a cached image from another
/// with the same soft tokens.
#[derive(Debug, Clone)]
pub struct PromptImage {
    pub key: String,
    pub embeddings: candle_core::Tensor,
}
