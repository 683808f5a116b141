//! Stage 1: the input texts (files, walked folders, stdin) and their spanned YAML trees.

pub mod places;
pub mod source;
pub mod yaml;
