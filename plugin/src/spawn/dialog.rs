//! Recognising Claude Code's development-channels confirmation on screen.
//!
//! Claude Code 2.1.330 renders it (component `DevChannelsDialog`) as:
//!
//! ```text
//! WARNING: Loading development channels
//! --dangerously-load-development-channels is for local channel development only. Do not use
//! this option to run channels you have downloaded off the internet.
//! Please use --channels to run a list of approved channels.
//! Channels: server:NAME
//! ❯ 1. I am using this for local development
//!   2. Exit
//! ```
//!
//! The options are a select list with the first focused; a digit picks an
//! option at once, so the keystroke that accepts is `1` (Enter would also pick
//! the focused first option). In screen-reader mode the same dialog is a
//! `y/n` prompt instead, answered with `y` + Enter. Claude Code shows the dialog
//! only when channels are available to the account: offline it is skipped and
//! the flag reported as ignored.

use super::pty::squash;

/// Title of the dialog.
pub const DIALOG_TITLE: &str = "WARNING: Loading development channels";
/// The accepting option's label.
pub const ACCEPT_LABEL: &str = "I am using this for local development";
/// Keys that pick "I am using this for local development" in the select list.
pub const ACCEPT_KEYS: &[u8] = b"1";
/// Enter: picks the focused option, which is the accepting one (first, focused
/// by default). Sent only when claude did not react to [`ACCEPT_KEYS`].
pub const FALLBACK_KEYS: &[u8] = b"\r";
/// Keys that answer the screen-reader (`Enter y/n:`) variant.
pub const ACCEPT_KEYS_YES_NO: &[u8] = b"y\r";

/// Lines of the folder-trust dialog ("Accessing workspace: … Quick safety check:
/// Is this a project you created or one you trust? … ❯ No, exit / Yes, I trust
/// this folder" in 2.1.330; "Do you trust the files in this folder?" earlier).
/// spawn never answers it: trusting a folder is the operator's decision.
pub const TRUST_MARKERS: &[&str] = &[
    "Yes, I trust this folder",
    "Do you trust the files in this folder?",
];

/// What the screen shows, as far as the supervisor cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Claude asks whether to trust the working folder.
    TrustDialog,
    /// The development-channels dialog, as a numbered select list.
    DevChannelsDialog,
    /// The same dialog in screen-reader mode (`Enter y/n:`).
    DevChannelsDialogYesNo,
    Other,
}

/// Classifies text already stripped of terminal codes.
pub fn classify(screen_text: &str) -> Screen {
    let s = squash(screen_text);
    if TRUST_MARKERS.iter().any(|m| s.contains(&squash(m))) {
        return Screen::TrustDialog;
    }
    let has_title = s.contains(&squash(DIALOG_TITLE));
    let has_accept = s.contains(&squash(ACCEPT_LABEL));
    if !(has_title || has_accept) {
        return Screen::Other;
    }
    if s.contains("Entery/n:") {
        Screen::DevChannelsDialogYesNo
    } else if has_accept {
        Screen::DevChannelsDialog
    } else {
        // Title drawn, options not yet: wait for the rest of the frame.
        Screen::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_dialog_even_with_cursor_moves_for_spaces() {
        let frame = "WARNING: Loading development channels\n❯ 1.I am using this for local development\n  2. Exit";
        assert_eq!(classify(frame), Screen::DevChannelsDialog);
        assert_eq!(
            classify("WARNING: Loading development channels\ny. I am using this for local development\nEnter y/n: "),
            Screen::DevChannelsDialogYesNo
        );
        assert_eq!(
            classify("WARNING: Loading development channels"),
            Screen::Other
        );
        assert_eq!(classify("❯ hello"), Screen::Other);
        assert_eq!(
            classify("Quick safety check: Is this a project you created or one you trust?\n❯ No, exit\n  Yes, I trust this folder"),
            Screen::TrustDialog
        );
    }
}
